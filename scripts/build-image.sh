#!/usr/bin/env bash
# Builds the cluster-rl image: `scripts/build-image.sh cpu|cuda [TAG]` (what `make image` and
# `make image-cuda` run). Default tags: localhost/cluster-code-rl:cpu and :cuda.
#
# Engine: docker when its daemon answers (`docker info`), else podman; ENGINE=... overrides. With
# podman and no CONTAINERS_CONF of the caller's, scripts/containers.conf is used (runc, ulimits the
# host can grant).
#
# The Dockerfiles are built as they are; only build ARGs adapt them to the host:
# - no registry reachable (the pinned Debian base, which both Dockerfiles start from, can be neither
#   found nor pulled): a Debian base is made locally with debootstrap (scripts/make-debian-base.sh)
#   and passed as BASE_IMAGE;
# - PyTorch's CPU index unreachable: the host's pip downloads the torch CPU wheel into wheelhouse/
#   and the build installs it from there (TORCH_INDEX_URL is then empty).
# BASE_IMAGE, PIP_INDEX_URL, TORCH_INDEX_URL (CPU) and TORCH_CUDA_ARCH_LIST (CUDA) from the
# environment are passed through as they are. The CUDA image needs no CUDA base image: its CUDA
# libraries and compiler are PyPI wheels. PIP_CERT (default: the system CA bundle) goes in as the
# build secret `pip_cert`. EXTRA_BUILD_ARGS is appended to the engine's build command.
#
# SOURCE_DATE_EPOCH from the environment (e.g. `git log -1 --format=%ct`) makes the images
# reproducible: it goes in as a build ARG and as the CREATED label, and with podman as --timestamp
# (image and file times). Two builds of one tree with one SOURCE_DATE_EPOCH then give the same image
# ID (scripts/reproducible.py, `make reproducible`). The REVISION label is the tree's git commit, or
# REVISION from the environment (for a copy of the tree without .git).
set -euo pipefail

variant=${1:-}
case "$variant" in
cpu) dockerfile=Dockerfile ;;
cuda) dockerfile=Dockerfile.cuda ;;
*)
    echo "usage: scripts/build-image.sh cpu|cuda [TAG]" >&2
    exit 2
    ;;
esac
repo=$(cd "$(dirname "$0")/.." && pwd)
tag=${2:-localhost/cluster-code-rl:$variant}
cd "$repo"

log() { echo "build-image: $*" >&2; }

if [[ -z "${ENGINE:-}" ]]; then
    if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
        ENGINE=docker
    elif command -v podman >/dev/null; then
        ENGINE=podman
    else
        log "no container engine: install docker (with a running daemon) or podman"
        exit 1
    fi
fi
build_args=()
if [[ "$(basename "$ENGINE")" == podman* ]]; then
    if [[ -n "${SOURCE_DATE_EPOCH:-}" ]]; then
        build_args+=(--timestamp "$SOURCE_DATE_EPOCH")
    fi
    if [[ -z "${CONTAINERS_CONF:-}" ]]; then
        export CONTAINERS_CONF="$repo/scripts/containers.conf"
    fi
fi

# The default of a Dockerfile's `ARG NAME=value` line.
arg_default() { sed -n "s/^ARG $1=//p" "$dockerfile" | head -n1; }
# An image is usable when it is present locally or can be pulled.
image_available() { "$ENGINE" image inspect "$1" >/dev/null 2>&1 || "$ENGINE" pull "$1" >/dev/null 2>&1; }
reachable() {
    python3 - "$1" <<'PY' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=15)
PY
}

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -n1)
revision=${REVISION:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
if [[ -n "${SOURCE_DATE_EPOCH:-}" ]]; then
    created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
    build_args+=(--build-arg "SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH")
else
    created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
fi
build_args+=(--build-arg "VERSION=$version" --build-arg "REVISION=$revision" --build-arg "CREATED=$created")

if [[ -z "${BASE_IMAGE:-}" ]] && ! image_available "$(arg_default BASE_IMAGE)"; then
    log "cannot pull $(arg_default BASE_IMAGE); making a local Debian base with debootstrap"
    BASE_IMAGE=localhost/debian:bookworm-slim
    "$repo/scripts/make-debian-base.sh" "$ENGINE" "$BASE_IMAGE"
fi
if [[ "$variant" == cpu ]]; then
    if [[ -z "${TORCH_INDEX_URL+set}" ]] && ! reachable "$(arg_default TORCH_INDEX_URL)/torch/"; then
        torch_pin="$(sed -n 's/^ *"\(torch==[^"]*\)",*$/\1/p' pyproject.toml | head -n1)+cpu"
        if ! ls wheelhouse/torch-"${torch_pin#torch==}"-*.whl >/dev/null 2>&1; then
            log "PyTorch's CPU index is unreachable; fetching $torch_pin into wheelhouse/ with the host's pip"
            if ! "${PYTHON:-python3}" -m pip download --quiet --no-deps --only-binary=:all: \
                --python-version 3.11 --platform manylinux_2_28_x86_64 -d wheelhouse "$torch_pin"; then
                log "cannot get $torch_pin: put its wheel into wheelhouse/ or set TORCH_INDEX_URL"
                exit 1
            fi
        fi
        TORCH_INDEX_URL=
    fi
fi

passed=(BASE_IMAGE PIP_INDEX_URL)
if [[ "$variant" == cpu ]]; then passed+=(TORCH_INDEX_URL); else passed+=(TORCH_CUDA_ARCH_LIST); fi
for name in "${passed[@]}"; do
    if [[ -n "${!name+set}" ]]; then
        build_args+=(--build-arg "$name=${!name}")
    fi
done
cert=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
if [[ -f "$cert" ]]; then
    build_args+=(--secret "id=pip_cert,src=$cert")
fi

log "$ENGINE build -f $dockerfile -t $tag"
# shellcheck disable=SC2086  # EXTRA_BUILD_ARGS is a list of words by design
exec "$ENGINE" build -f "$dockerfile" -t "$tag" "${build_args[@]}" ${EXTRA_BUILD_ARGS:-} .
