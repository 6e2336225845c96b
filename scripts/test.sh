#!/usr/bin/env bash
# README command 2: set up the venv with dev extras and the Debian packages the tests need
# (PostgreSQL and MariaDB servers, Chromium), then run ruff, mypy and pytest. Idempotent.
set -euo pipefail
source "$(dirname "$0")/_venv.sh" dev

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
[ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
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
ruff check .
echo "==> mypy"
# The checkout's folders are the hpstudy namespace (package-dir mapping): mypy sees them under that name
# through a link, as an installed wheel lays them out.
mkdir -p build/typecheck && ln -sfn ../.. build/typecheck/hpstudy
(cd build/typecheck && mypy --config-file ../../pyproject.toml --explicit-package-bases \
  hpstudy/__init__.py hpstudy/__main__.py hpstudy/studies hpstudy/objectives hpstudy/storage)
echo "==> pytest"
set +e
pytest "$@"
rc=$?
set -e
[ $rc -eq 5 ] && { echo "no tests collected" >&2; exit 1; }
exit $rc
