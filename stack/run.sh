#!/usr/bin/env bash
# `make run`: the local stack, then every platform process under honcho; Ctrl-C stops all of it.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m stack up
trap '.venv/bin/python -m stack down' EXIT
# honcho turns Ctrl-C into SIGTERM for every process group; this shell only waits for it to finish.
trap ':' INT TERM
PATH="$PWD/.venv/bin:$PATH" .venv/bin/honcho start -f Procfile || true
