# Shared by quickstart.sh and test.sh: make or update the project's venv (idempotent).
# Usage: source scripts/_venv.sh [EXTRAS]   e.g. "dev"
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${HPSTUDY_VENV:-$ROOT/.venv}"
EXTRAS="${1:-}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating venv $VENV"
  "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.hpstudy-installed${EXTRAS:+-$EXTRAS}"
if [ ! -f "$STAMP" ] || [ "$ROOT/pyproject.toml" -nt "$STAMP" ]; then
  echo "==> installing hpstudy${EXTRAS:+[$EXTRAS]} into $VENV (first time: a few minutes)"
  LOG="$VENV/install.log"
  if ! "$VENV/bin/python" -m pip install -e "$ROOT${EXTRAS:+[$EXTRAS]}" >"$LOG" 2>&1; then
    grep -v "WARNING: Location" "$LOG" | tail -20 >&2
    echo "install failed; full log: $LOG" >&2
    exit 1
  fi
  "$VENV/bin/python" -c "import optuna, torch, torchvision, lightning, ultralytics" \
    || { echo "install failed: the packages do not import (log: $LOG)" >&2; exit 1; }
  touch "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
# Offline by construction: Ultralytics must not reach the network or write outside the repo.
export YOLO_OFFLINE=1 YOLO_AUTOINSTALL=false YOLO_CONFIG_DIR="${YOLO_CONFIG_DIR:-$ROOT/storage/yolo_config}"
cd "$ROOT"
