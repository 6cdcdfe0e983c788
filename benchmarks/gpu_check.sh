#!/usr/bin/env bash
# One command for a machine with a CUDA GPU: short InfoNCE and AutoRegEmbed runs in bf16 with SDPA
# on the largest backbone available offline, reporting tokens/s, MFU and peak tensor memory per
# stage, and the shared-decoder vs frozen-copy memory ratio. Installs nothing beyond the README's
# set-up (run here when .venv is missing).
#
#   bash benchmarks/gpu_check.sh [--steps 20] [--backbone NAME] [--out DIR]
#   bash benchmarks/gpu_check.sh --dry-run      # the same path on a CPU, fp32, a few steps
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/harness ] || bash .ci/setup
exec .venv/bin/python benchmarks/gpu_check.py "$@"
