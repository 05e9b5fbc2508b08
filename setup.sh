#!/usr/bin/env bash
# Everything a new machine needs, in one command: the Python packages in .venv, then
# Redis built from source and started on 127.0.0.1 (install_redis.sh, which gets the
# arguments: --build-only builds without starting it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null ||
  { echo "setup.sh: Python 3.10 or newer is needed (set PYTHON to pick one)" >&2; exit 1; }
[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
echo "Installing the Python packages of requirements.txt into .venv..."
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
./install_redis.sh "$@"
echo "Ready. To run the scripts: source .venv/bin/activate"
