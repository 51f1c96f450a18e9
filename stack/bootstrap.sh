#!/usr/bin/env bash
# Prepare a machine for Jobstream: check the toolchain, then create .venv from uv.lock with uv.
# Idempotent and quiet when nothing is missing. MariaDB, Redis and the Kafka jars are fetched
# later, by `python -m stack up`, only when no configured server answers.
set -euo pipefail
cd "$(dirname "$0")/.."

uv_version=0.13.8
python=""
for candidate in python3.13 python3.12 python3.11 python3; do
  if command -v "$candidate" >/dev/null 2>&1 &&
     "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    python=$(command -v "$candidate")
    break
  fi
done
[ -n "$python" ] || { echo "error: Python 3.11 or newer is needed" >&2; exit 1; }
command -v java >/dev/null || { echo "error: Java 17 or newer is needed to run Kafka" >&2; exit 1; }
java_major=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/ *java.specification.version = //p')
[ "${java_major%%.*}" -ge 17 ] 2>/dev/null || { echo "error: Java 17+ is needed, found $java_major" >&2; exit 1; }

tools=.local/tools
if [ ! -x "$tools/bin/uv" ] || [ "$("$tools/bin/uv" --version | cut -d' ' -f2)" != "$uv_version" ]; then
  "$python" -m venv "$tools"
  "$tools/bin/pip" install --quiet "uv==$uv_version"
fi
UV_PYTHON_DOWNLOADS=never "$tools/bin/uv" sync --quiet --frozen --python "$python"
