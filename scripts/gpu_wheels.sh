#!/usr/bin/env bash
# Build .whl/: the wheels the GPU machine's image lacks, for its Python 3.12 on manylinux x86_64, so that
# scripts/gpu_check.sh can install them there offline (`pip install --no-index --find-links .whl`).
# The image already has torch 2.11, torchvision, lightning, numpy, pandas, scipy, matplotlib, pillow,
# opencv-python-headless, psutil, pyyaml, requests, tqdm, packaging, httpx, nvidia-ml-py
# (the device tool's description of the GPU image): those are never downloaded, and torch never is.
# Versions match the dev venv's (pyproject.toml's ranges). The device tool carries at most 64 MiB in all
# (working tree included), so the total is checked against a wheel budget.
#
#   scripts/gpu_wheels.sh [DEST]            # DEST defaults to .whl (gitignored)
#   WHEEL_BUDGET_MIB=48 scripts/gpu_wheels.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${1:-$root/.whl}"
budget_mib="${WHEEL_BUDGET_MIB:-56}"   # leaves ~8 MiB of the 64 MiB carry limit for the working tree
python="${PYTHON:-python3}"

WHEELS=(
  optuna==5.0.0 optuna-integration==5.0.0 optuna-dashboard==0.21.0 bottle==0.13.4
  alembic==1.20.1 mako==1.4.3 colorlog==6.12.0 sqlalchemy==2.1.9
  ultralytics==8.4.190 ultralytics-thop==2.2.3 ultralytics-platform==0.1.99
  polars==1.20.0   # the last polars in one wheel under ~32 MiB; 2.x's polars-runtime-32 alone is 51 MiB
  pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
  typing-extensions==4.16.0
)
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64
           manylinux2014_x86_64 manylinux1_x86_64)

mkdir -p "$dest"
platform_args=()
for p in "${PLATFORMS[@]}"; do platform_args+=(--platform "$p"); done
for spec in "${WHEELS[@]}"; do
  if ! out=$("$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
             --implementation cp "${platform_args[@]}" -d "$dest" "$spec" 2>&1); then
    echo "$out" | grep -v "^WARNING: Location" >&2
    echo "error: no Python 3.12 manylinux x86_64 wheel of $spec" >&2
    exit 1
  fi
done

# Exactly the pinned wheels: a stale one (another version, a dropped package) would travel, and two
# versions of one distribution stop the whole install there.
for whl in "$dest"/*.whl; do
  name_version=$(basename "$whl" | cut -d- -f1-2 | tr 'A-Z' 'a-z')
  keep=0
  for spec in "${WHEELS[@]}"; do
    [ "$(echo "${spec%%==*}" | tr 'A-Z-' 'a-z_')-${spec##*==}" = "$name_version" ] && keep=1
  done
  [ $keep = 1 ] || { echo "removing stale $(basename "$whl")"; rm -f "$whl"; }
done

total_kib=$(du -ck "$dest"/*.whl | tail -1 | cut -f1)
total_mib=$(( (total_kib + 1023) / 1024 ))
echo "==> $(ls "$dest"/*.whl | wc -l) wheels, ${total_mib} MiB in $dest (budget ${budget_mib} MiB of the 64 MiB carry)"
echo "largest:"
du -k "$dest"/*.whl | sort -rn | head -5 | awk '{printf "  %6.1f MiB  %s\n", $1/1024, $2}'
if [ "$total_mib" -gt "$budget_mib" ]; then
  cat >&2 <<MSG
error: the wheels take ${total_mib} MiB, over the ${budget_mib} MiB budget. To trim: polars-runtime-32 is
the big one (Ultralytics only reads results.csv with it when saving a checkpoint); optuna-dashboard is not
needed by the check; the working tree itself also travels, so keep untracked files out of the checkout.
MSG
  exit 1
fi
