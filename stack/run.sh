#!/usr/bin/env bash
# `make run`: the local stack, then every platform process under stack.supervisor, which restarts whatever exits.
# Only Ctrl-C here or `make down` elsewhere stops the platform; then this stops the stack too.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m stack up
trap '.venv/bin/python -m stack down' EXIT
# The supervisor turns Ctrl-C into SIGTERM for every process group; this shell only waits for it to finish.
trap ':' INT TERM
.venv/bin/python -m stack.supervisor --procfile Procfile || true
