#!/usr/bin/env bash
# README command 2: set up the venv with dev extras and the Debian packages the tests need
# (PostgreSQL server, Chromium), then run ruff, mypy and pytest. Idempotent.
set -euo pipefail
source "$(dirname "$0")/_venv.sh" dev

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "==> apt-get install ${need[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "warning: missing ${need[*]} (install them from your distribution); their tests will be skipped" >&2
  fi
fi

echo "==> ruff"
ruff check studies objectives storage scripts tests
echo "==> mypy"
mypy studies objectives storage
echo "==> pytest"
set +e
python -m pytest "$@"
rc=$?
set -e
[ $rc -eq 5 ] && { echo "no tests collected" >&2; exit 1; }
exit $rc
