#!/usr/bin/env bash
# Fills gpu-wheels/ (`make gpu-wheels`; ignored by git and the image builds) with what
# scripts/gpu-check.sh installs on a GPU machine that has no network: the wheels of this project's
# dependencies that such a machine lacks, and pufferlib-core's sdist (compiled there, against its torch).
# Every file is the version requirements/cuda.txt pins and is checked against its hashes there.
#
#   scripts/gpu-wheels.sh [DIR]     (default gpu-wheels/)
#
# GPU_WHEELS: the packages to carry (default below: what the GPU machine image this was made for
# lacks, from its package list; torch, numpy, numba, matplotlib, tensorboard
# and the CUDA libraries are there; setuptools and wheel are carried all the same: pufferlib-core's
# pyproject.toml needs setuptools >= 77 to build). GPU_PYTHON: the Python version there (default 3.12).
# The set must stay under 60 MiB: the device tool carries at most 64 MiB with the working tree.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$repo/gpu-wheels}
python=${PYTHON:-python3}
gpu_python=${GPU_PYTHON:-3.12}
limit_mib=60
default_wheels="pufferlib-core setuptools wheel gymnasium farama-notifications pydantic pydantic-core annotated-types
typing-inspection boto3 botocore s3transfer jmespath kubernetes durationpy websocket-client
requests-oauthlib oauthlib rich-argparse pyro-ppl pyro-api aiohttp-retry"
read -r -a names <<<"$(echo ${GPU_WHEELS:-$default_wheels})"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
"$python" "$repo/scripts/requirements.py" select "$repo/requirements/cuda.txt" "${names[@]}" >"$work/all.txt"
awk '/^[A-Za-z0-9]/ { sdist = /^pufferlib-core==/ } sdist' "$work/all.txt" >"$work/sdist.txt"
awk '/^[A-Za-z0-9]/ { sdist = /^pufferlib-core==/ } !sdist' "$work/all.txt" >"$work/wheels.txt"

platforms=()
for minor in 39 35 34 31 28 27 24 17; do platforms+=(--platform "manylinux_2_${minor}_x86_64"); done
platforms+=(--platform manylinux2014_x86_64)
"$python" -m pip download --quiet --require-hashes --no-deps --only-binary=:all: \
    --python-version "$gpu_python" --implementation cp "${platforms[@]}" -d "$out" -r "$work/wheels.txt"
if [[ -s "$work/sdist.txt" ]]; then
    # The sdist is fetched as a file: `pip download` would prepare its metadata, running its setup.py,
    # which needs torch and setuptools >= 77 (PEP 639 license) where pip runs.
    "$python" - "$work/sdist.txt" "$out" "${PIP_INDEX_URL:-https://pypi.org/simple}" <<'PY'
import hashlib, re, sys, urllib.parse, urllib.request
from pathlib import Path

text, out, index = Path(sys.argv[1]).read_text(), Path(sys.argv[2]), sys.argv[3].rstrip("/")
name, version = re.match(r"([A-Za-z0-9._-]+)==(\S+)", text).groups()
hashes = set(re.findall(r"--hash=sha256:([0-9a-f]{64})", text))
page_url = f"{index}/{name}/"
page = urllib.request.urlopen(page_url, timeout=60).read().decode()
wanted = f"{name.replace('-', '_')}-{version}.tar.gz"
links = [h for h in re.findall(r'href="([^"]+)"', page) if h.split("#")[0].endswith("/" + wanted)]
if not links:
    sys.exit(f"gpu-wheels: {wanted} is not on {page_url}")
data = urllib.request.urlopen(urllib.parse.urljoin(page_url, links[0].split("#")[0]), timeout=300).read()
if hashlib.sha256(data).hexdigest() not in hashes:
    sys.exit(f"gpu-wheels: {wanted} does not match requirements/cuda.txt's hash")
(out / wanted).write_bytes(data)
PY
fi
size=$(du -sk "$out" | cut -f1)
echo "gpu-wheels: $(find "$out" -maxdepth 1 -type f | wc -l) files, $((size / 1024)) MiB in $out"
if ((size > limit_mib * 1024)); then
    echo "gpu-wheels: $out is over $limit_mib MiB: carry fewer packages (GPU_WHEELS)" >&2
    exit 1
fi
