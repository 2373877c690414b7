#!/usr/bin/env bash
# Builds a local Debian bookworm "slim" base image with debootstrap, for hosts that cannot pull from a
# container registry. The Dockerfiles take their base from a build ARG, so `make image` passes this
# image in place of the pinned debian:bookworm-slim digest and the Dockerfile itself stays unchanged.
#
# usage: scripts/make-debian-base.sh ENGINE [IMAGE]   (IMAGE defaults to localhost/debian:bookworm-slim)
# Reuses IMAGE when it already exists; set REBUILD_BASE=1 to make it again.
set -euo pipefail

engine=${1:?usage: make-debian-base.sh ENGINE [IMAGE]}
image=${2:-localhost/debian:bookworm-slim}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [[ "${REBUILD_BASE:-0}" != 1 ]] && "$engine" image inspect "$image" >/dev/null 2>&1; then
    echo "base image $image exists; reusing it (REBUILD_BASE=1 to rebuild)"
    exit 0
fi
if ! command -v debootstrap >/dev/null; then
    echo "make-debian-base.sh: debootstrap is not installed (apt-get install debootstrap)" >&2
    exit 1
fi

rootfs=$(mktemp -d "${TMPDIR:-/tmp}/debian-base.XXXXXX")
trap 'rm -rf "$rootfs"' EXIT

debootstrap --variant=minbase bookworm "$rootfs" "$mirror"

# What the official slim image does: no docs, man pages or translations from later installs, and
# no apt caches in the layers.
mkdir -p "$rootfs/etc/dpkg/dpkg.cfg.d" "$rootfs/etc/apt/apt.conf.d"
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
CFG
cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
echo 'Acquire::Languages "none";' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
find "$rootfs/usr/share/doc" -mindepth 2 ! -name copyright -delete 2>/dev/null || true
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* \
    "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/log/*.log

tar -C "$rootfs" -c . | "$engine" import --change 'CMD ["bash"]' - "$image"
echo "created base image $image"
