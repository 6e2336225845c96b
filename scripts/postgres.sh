#!/usr/bin/env bash
# A local PostgreSQL for hpstudy on this host: scripts/postgres.sh start|stop|status|url|env|destroy
#   data dir storage/pg/ (HPSTUDY_PG_DIR), listens on 127.0.0.1 (HPSTUDY_PG_LISTEN=0.0.0.0 for other
#   machines), generated password in storage/pg/password (mode 600). `url` prints the URL without the
#   password; `eval "$(scripts/postgres.sh env)"` points libpq at the password file for this shell.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${HPSTUDY_VENV:-$ROOT/.venv}/bin/python"
[ -x "$PY" ] || PY=python3
cd "$ROOT"
exec "$PY" -m hpstudy.storage.pgserver "$@"
