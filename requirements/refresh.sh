#!/usr/bin/env bash
# Refresh the locks to the newest releases that pyproject.toml's ranges (and requirements/*.in)
# allow, then run the whole suite on them: an upgrade is one deliberate, tested commit.
#
#   bash requirements/refresh.sh            # upgrade every lock, then bash .ci/run
#   bash requirements/refresh.sh --no-test  # upgrade only
#   WSLOC_LOCK_ARGS= bash requirements/refresh.sh --no-test   # re-lock after editing a range, keeping other pins
#
# pip-tools' pip-compile, not uv: it resolves with pip itself, so the lock is made with the same
# indexes, find-links and constraints (pip.conf) that `pip install -r` later installs from; uv reads
# none of pip's configuration. The locks are for CPython 3.11 on Linux x86_64 (CI and the Space).
set -euo pipefail
cd "$(dirname "$0")/.."

tools=${WSLOC_LOCK_TOOLS:-build/lock-tools}
if [ ! -x "$tools/bin/pip-compile" ]; then
  python3.11 -m venv "$tools"
  "$tools/bin/python" -m pip install --quiet --disable-pip-version-check "pip-tools==7.7.0"
fi
upgrade=${WSLOC_LOCK_ARGS---upgrade}
export CUSTOM_COMPILE_COMMAND="bash requirements/refresh.sh"
compile() {
  :
  # shellcheck disable=SC2086
  "$tools/bin/pip-compile" --quiet $upgrade --strip-extras --allow-unsafe --no-emit-index-url \
    --no-emit-find-links --no-emit-trusted-host "$@" 2> >(grep -v "is ignored: it is neither" >&2)
}
compile -o requirements/runtime.txt pyproject.toml
compile --extra app -o requirements/app.txt pyproject.toml
compile -o requirements.txt requirements/space.in
compile --extra app --extra export -o requirements-dev.txt pyproject.toml requirements/dev.in

if [ "${1:-}" != "--no-test" ]; then
  bash .ci/run
fi
