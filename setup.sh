#!/usr/bin/env bash
# Everything a new machine needs, in one command: the Python packages in .venv,
# Chromium from Debian's packages (the dashboard's browser test drives it; skipped with
# --no-browser), then Redis built from source and started on 127.0.0.1 (install_redis.sh,
# which gets the other arguments: --build-only builds without starting it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

browser=yes
args=()
for arg in "$@"; do
  if [[ $arg == --no-browser ]]; then browser=no; else args+=("$arg"); fi
done

PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null ||
  { echo "setup.sh: Python 3.10 or newer is needed (set PYTHON to pick one)" >&2; exit 1; }
[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
echo "Installing the Python packages of requirements.txt into .venv..."
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt

install_chromium() {
  local sudo=''
  [[ $(id -u) == 0 ]] || sudo=sudo
  local install=($sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium)
  "${install[@]}" >/dev/null || { $sudo apt-get update -q >/dev/null && "${install[@]}" >/dev/null; }
}
if [[ $browser == yes ]] && ! command -v chromium >/dev/null; then
  echo "Installing Chromium from Debian's packages, for the dashboard's browser test..."
  command -v apt-get >/dev/null && install_chromium ||
    echo "setup.sh: no Chromium installed; the dashboard's browser test will fail until one is" >&2
fi

./install_redis.sh "${args[@]}"
echo "Ready. To run the scripts: source .venv/bin/activate"
