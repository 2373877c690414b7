#!/usr/bin/env bash
# The GPU check, for a machine with an NVIDIA GPU, Python, PyTorch (CUDA build) and nvcc preinstalled
# and no network: installs this project and what the machine lacks from wheels carried beside it
# (`make gpu-wheels` fills gpu-wheels/ where PyPI answers), compiles pufferlib-core's CUDA kernel for
# the GPU there, runs `status`, a 60 s `train --device cuda` and the training benchmark on the GPU,
# and writes one JSON summary (docs/gpus.md, "GPU check", documents its shape).
#
#   scripts/gpu-check.sh [--wheels DIR] [--summary FILE] [--python PY] [--train-seconds N] [--bench-steps N]
#
# Defaults: gpu-wheels/ beside this script's repo, $OUT/gpu-check.json (./gpu-check.json without
# OUT), python3 (GPU_CHECK_PYTHON). Exit codes: 0 passed, 1 a step failed, 2 bad arguments, 3 the
# machine cannot run it (no GPU or driver, CPU-only torch, no nvcc); the reason is one line on stderr
# and in the summary's `error`. Nothing outside a temporary directory is installed or written,
# except the summary.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${GPU_CHECK_PYTHON:-python3}
if ! command -v "$python" >/dev/null 2>&1; then
    echo "gpu-check: $python not found: this check needs Python with PyTorch's CUDA build" >&2
    exit 3
fi
exec "$python" "$repo/scripts/gpu_check.py" "$@"
