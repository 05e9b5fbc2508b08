#!/usr/bin/env bash
# The two apps in production, served by granian with what keeps the service up:
#
#   ./serve.sh 9_stock      or      ./serve.sh 100_seat
#
# PORT (default 1245), HOST (default 127.0.0.1), WORKERS (default 2); REDIS_URL is
# passed through to the app. Ctrl-C or SIGTERM stops it cleanly.
#
# First the app's launch step runs, once (100_seat sets its 50 seats there, so that a
# worker started late or respawned never resets them); if Redis cannot be reached it
# says so in one line and exits 1. Then granian takes this process's place (exec), so
# the signals reach it: a worker that dies is started again (--respawn-failed-workers;
# without it granian stops the whole server when one worker dies), and a worker that
# will not stop is killed after 5 s (--workers-kill-timeout; a SIGTERM that comes while
# the workers start would otherwise leave granian waiting for them forever). Each worker
# takes 8 requests at a time (--backpressure 8), the rest wait in the listen queue: the
# same requests a second, with the p99 latency halved (docs/performance.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"  # the apps are imported by module name, from here

if [[ $# != 1 || ! $1 =~ ^(9_stock|100_seat)$ ]]; then
  echo "usage: ./serve.sh 9_stock|100_seat   (environment: PORT, HOST, WORKERS, REDIS_URL)" >&2
  exit 2
fi
module=$1

# importlib: the module names start with a digit. run() turns an unreachable Redis into
# the scripts' one line ("Redis client not connected to the server: ...") and exit 1.
.venv/bin/python -c '
import importlib, sys
from queuing.redis_connection import run
run(getattr(importlib.import_module(sys.argv[1]), "launch", lambda: None))
' "$module"

exec .venv/bin/granian --interface wsgi --workers "${WORKERS:-2}" --blocking-threads 2 \
  --respawn-failed-workers --workers-kill-timeout 5 --backpressure 8 \
  --host "${HOST:-127.0.0.1}" --port "${PORT:-1245}" --factory "$module:create_app"
