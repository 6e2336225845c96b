#!/usr/bin/env bash
# The prepared GPU check (issue 15): the memory model on live profiling, a YOLO study at a 25% memory
# budget, and 1/2/4 trials packed on one GPU, each part under its own time cap (8 minutes in all).
#
#   scripts/gpu_check.sh OUT_DIR [--device cuda|cpu] [--dry-run] [--work DIR]
#
# On the GPU machine (Python 3.12, torch there; no optuna/ultralytics/sqlalchemy/polars/pydantic), the
# wheels of scripts/gpu_wheels.sh, carried in .whl/, are installed into a private folder first:
#   device run, carry [".whl"]:  scripts/gpu_check.sh $OUT
# Here (CI, a laptop): scripts/gpu_check.sh /tmp/check --device cpu --dry-run   (about a minute)
# Writes OUT_DIR/check.json (headline figures, date, machine, versions), memory/study/packing JSON,
# memory.png, memory_map.png, packing.png and check.log. Exit status 1 when a part failed or hit its cap.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
[ $# -ge 1 ] || { echo "usage: $0 OUT_DIR [--device cuda|cpu] [--dry-run] [--work DIR]" >&2; exit 2; }
python="${PYTHON:-python3}"
site="${GPU_CHECK_SITE:-${TMPDIR:-/tmp}/hpstudy-gpu-site}"
link="${TMPDIR:-/tmp}/hpstudy-gpu-link"

if compgen -G "$root/.whl/*.whl" >/dev/null && ! "$python" -c "import optuna, ultralytics, pydantic" 2>/dev/null; then
  echo "==> installing $(ls "$root"/.whl/*.whl | wc -l) wheels from .whl/ into $site"
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --find-links "$root/.whl" --target "$site" "$root"/.whl/*.whl
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
# The checkout is the hpstudy package (package-dir mapping): a link named hpstudy makes it importable
# without installing it; an installed hpstudy (the dev venv's) is left alone.
if ! "$python" -c "import hpstudy" 2>/dev/null; then
  mkdir -p "$link" && ln -sfn "$root" "$link/hpstudy"
  export PYTHONPATH="$link${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$root/scripts${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
exec "$python" -m benchlib.gpu_check "$@"
