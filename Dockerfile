# CPU image of cluster-rl: `docker build -t cluster-code-rl:cpu .` (or `make image`).
#
# Build ARGs:
#   BASE_IMAGE       Debian bookworm slim, pinned by digest. `make image` passes a locally made
#                    equivalent where no registry can be reached (scripts/make-debian-base.sh).
#   TORCH_INDEX_URL  where torch's CPU build comes from; empty: only wheelhouse/ (scripts/build-image.sh
#                    fills it when the index is unreachable). PIP_INDEX_URL: everything else.
#   VERSION, REVISION, CREATED, SOURCE: OCI labels.
#   SOURCE_DATE_EPOCH  when set (scripts/build-image.sh passes the caller's): the time the image's own
#                    files carry, so two builds of one tree give the same image (with podman's
#                    --timestamp, which build-image.sh also sets from it).
# The RUN lines run under /bin/sh and have no pipes: a SHELL instruction (for pipefail) would be dropped
# by podman's OCI image format, and its docker format records the build container's ID and hostname.
# A pip CA bundle can be passed as the build secret `pip_cert` (`--secret id=pip_cert,src=FILE`).
ARG BASE_IMAGE=docker.io/library/debian:bookworm-20260918-slim@sha256:3783cc01769c7b2b1b83a5c5ad96c815348e28ed7da68e2e3687004faa906251

FROM ${BASE_IMAGE} AS builder
ARG DEBIAN_FRONTEND=noninteractive
# Debian's own versions of these packages are what bookworm ships; pinning them would break the build
# at the next point release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-dev g++ ca-certificates \
    && rm -rf /var/lib/apt/lists/*

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python3 -m venv /opt/venv

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG PIP_INDEX_URL=https://pypi.org/simple
WORKDIR /build
# wheelhouse/ (wheels to prefer over the indexes) is optional and not in git; pyproject.toml only
# keeps this COPY valid without it (pip skips files that are not wheels).
COPY pyproject.toml wheelhouse* /wheelhouse/
COPY scripts/requirements.py /build/
COPY pyproject.toml /build/src/
# The hash-locked dependency set (requirements/cpu.txt, `make lock`): every package pinned with its
# sha256, the build tools included. The lock is complete, so nothing is resolved here (--no-deps; pip
# check below confirms). pufferlib-core 3.0.16 compiles its C extension against the torch that is
# installed, so everything else goes in first and it is built last, without build isolation. Nothing
# is byte-compiled here: warm.py below compiles only the modules a run imports.
COPY requirements/cpu.txt /build/requirements.txt
RUN python3 requirements.py select requirements.txt pufferlib-core >pufferlib.txt \
    && awk '/^[A-Za-z0-9]/ { skip = /^pufferlib-core==/ } !skip' requirements.txt >wheels.txt

RUN --mount=type=secret,id=pip_cert \
    if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi \
    && pip install --require-hashes --no-deps --no-compile --find-links /wheelhouse \
        ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} -r wheels.txt
# pufferlib-core's sdist is downloaded (hash-checked) and built in a fixed directory, not in pip's
# randomly named temporary one. The extension is compiled without debug info (-g0; the strip below
# would drop it anyway): GCC's debug info varied with the headers' file times, and the build ID hashes
# it. -ffile-prefix-map takes the build directory out of __FILE__, so the extension is the same bytes
# from whatever directory and builder layers it is built in. setuptools takes CFLAGS/CXXFLAGS in place
# of Python's own flags, so these are Python's plus the two.
RUN --mount=type=secret,id=pip_cert \
    if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi \
    && export PUFFERLIB_DISABLE_CUDA=1 \
    && pip download --require-hashes --no-deps --no-binary :all: --no-build-isolation -d /build/sdist \
        -r pufferlib.txt \
    && mkdir /build/pufferlib \
    && tar -xzf /build/sdist/*.tar.gz -C /build/pufferlib --strip-components=1 \
    && flags="$(python3 -c 'import sysconfig; print(sysconfig.get_config_var("CFLAGS"))') -g0 -ffile-prefix-map=/build/pufferlib=." \
    && CFLAGS="$flags" CXXFLAGS="$flags" pip install --no-deps --no-compile --no-build-isolation /build/pufferlib

COPY README.md /build/src/
COPY rl /build/src/rl
COPY entrypoint /build/src/entrypoint
COPY cluster_env.py /build/src/
COPY scripts/image/ /build/image/
# Then slim the venv: what cluster-rl never runs goes (scripts/image/slim.sh says what and why);
# torch's C++ headers, test binaries and protoc were needed only to build pufferlib's extension;
# packages' own test suites never run here; shared objects lose their symbol tables (not those in
# *.libs/, which auditwheel patched). The build tools go too: wheel and pip (setuptools stays: torch,
# tensorboard and pufferlib-core require it, and `import pufferlib` imports it through
# torch.utils.cpp_extension). warm.py runs after the stripping, so a library the strip broke fails
# the build.
# Bytecode is compiled once, one deterministic way: whatever bytecode the installs and warm.py's
# imports wrote is deleted, and compileall compiles the modules warm.py imported, in sorted order,
# with a fixed hash seed (the order of sets in .pyc), as unchecked-hash .pyc (no source times in
# them). For the numba cache, whose index holds its sources' times, the venv's files are dated
# SOURCE_DATE_EPOCH when it is set (the time podman's --timestamp gives every file in the image), and
# warm.py runs with the same fixed seed (the order of numba's compilation). record.py then makes each
# RECORD list the files as shipped.
ARG SOURCE_DATE_EPOCH
RUN pip install --no-compile --no-deps --no-build-isolation ./src \
    && pip uninstall --yes wheel \
    && pip check \
    && site=$(python3 -c 'import sysconfig; print(sysconfig.get_path("purelib"))') \
    && sh /build/image/slim.sh "$site" \
    && rm -rf "$site/torch/include" "$site/torch/test" "$site/torch/bin/"*[Tt]est* "$site/torch/bin/protoc"* \
        "$site/torch/lib/"*test*.so \
    && find "$site" -depth -type d -name tests -not -path "$site/torch/*" -exec rm -rf {} + \
    && find "$site" -type f -name '*.so*' -not -path '*.libs/*' \
        -exec sh -c 'for f; do strip --strip-unneeded "$f" 2>/dev/null || true; done' strip {} + \
    && cp /build/image/numba_cache_seed.py "$site/_cluster_rl_numba_cache_seed.py" \
    && echo 'import _cluster_rl_numba_cache_seed' >"$site/_cluster_rl_numba_cache_seed.pth" \
    && pip uninstall --yes pip \
    && if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then \
        find /opt/venv -exec touch --no-dereference --date "@$SOURCE_DATE_EPOCH" {} +; fi \
    && PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1 NUMBA_CACHE_DIR=/opt/numba-cache \
        python /build/image/warm.py /build/imported.txt \
    && find /opt/venv -depth -type d -name __pycache__ -exec rm -rf {} + \
    && PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1 \
        python -m compileall -q -f --invalidation-mode unchecked-hash -i /build/imported.txt \
    && python -B /build/image/record.py "$site"

FROM ${BASE_IMAGE} AS runtime
ARG DEBIAN_FRONTEND=noninteractive
ARG SOURCE_DATE_EPOCH
# apt's, dpkg's and update-alternatives' logs and ldconfig's cache hold build times: dropped, so that
# layer is reproducible. PYTHONHASHSEED fixes the order of sets in the .pyc Debian's python3 compiles.
# useradd dates the user's password change SOURCE_DATE_EPOCH when that is set.
# hadolint ignore=DL3008
RUN apt-get update \
    && PYTHONHASHSEED=0 apt-get install -y --no-install-recommends python3 ca-certificates \
    && rm -rf /var/lib/apt/lists/* /var/log/apt/*.log /var/log/dpkg.log /var/log/alternatives.log \
        /var/cache/ldconfig/aux-cache

# A fixed non-root user; the image also runs as any other uid (`-u UID:GID`): HOME and every cache
# point at /tmp (a tmpfs under --read-only), and /data is writable by all.
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /tmp --shell /usr/sbin/nologin rl \
    && mkdir -p /data \
    && chmod 1777 /data
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /opt/numba-cache /opt/numba-cache

ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    CLUSTER_CODE_HOME=/data \
    HOME=/tmp \
    NUMBA_CACHE_DIR=/tmp/numba-cache \
    CLUSTER_RL_NUMBA_CACHE_SEED=/opt/numba-cache \
    MPLCONFIGDIR=/tmp/matplotlib \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=https://github.com/cluster-code/cluster-code-rl
LABEL org.opencontainers.image.title="cluster-code-rl" \
      org.opencontainers.image.description="RL agents that diagnose and repair Kubernetes clusters (CPU)" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"

VOLUME ["/data"]
WORKDIR /data
USER 10001:10001
ENTRYPOINT ["cluster-rl"]
CMD ["--help"]
