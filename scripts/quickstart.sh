#!/usr/bin/env bash
# README command 1: set up the venv, run the CNN-on-digits study on the embedded SQLite default,
# print the best trial and how to look at it. Run it again: it resumes (and does nothing once full).
set -euo pipefail
source "$(dirname "$0")/_venv.sh"
python scripts/run_study.py studies/cnn_digits.yaml "$@"
