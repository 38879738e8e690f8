#!/bin/sh
# Build the container stack's base image from Debian's own packages, for machines that can reach
# an apt mirror but no container registry (air-gapped, proxied, or registry rate-limited):
#   debootstrap --variant=minbase bookworm ROOTFS MIRROR  ->  docker import - NAME
# Every image of compose/images/Dockerfile is built FROM it (build argument BASE_IMAGE).
#   compose/images/base-image.sh [NAME]      (root; default NAME: $BASE_IMAGE or cdr-base:bookworm)
# MIRROR is $DEBIAN_MIRROR, else the first Debian mirror of this machine's apt sources.
set -eu
name="${1:-${BASE_IMAGE:-cdr-base:bookworm}}"
engine="${ENGINE:-docker}"
if "$engine" image inspect "$name" >/dev/null 2>&1; then
  echo "base image $name present"; exit 0
fi
[ "$(id -u)" = 0 ] || { echo "error: building $name with debootstrap needs root (sudo make base-image)" >&2; exit 2; }
command -v debootstrap >/dev/null || { echo "error: debootstrap is missing: apt-get install -y debootstrap" >&2; exit 2; }
mirror="${DEBIAN_MIRROR:-$(grep -rhoE '(URIs:|^deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
  | grep -oE 'https?://[^ ]+' | head -n1)}"
mirror="${mirror:-http://deb.debian.org/debian}"
rootfs="$(mktemp -d /var/tmp/cdr-base.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT
echo "building $name: debootstrap bookworm from $mirror"
debootstrap --variant=minbase bookworm "$rootfs" "$mirror" > "$rootfs.log" 2>&1 \
  || { tail -n 20 "$rootfs.log" >&2; echo "error: debootstrap failed (log: $rootfs.log)" >&2; exit 1; }
rm -f "$rootfs.log"
# The image's apt sources: the same mirror, plus security updates when it is deb.debian.org.
{
  echo "deb $mirror bookworm main"
  echo "deb $mirror bookworm-updates main"
  case "$mirror" in *deb.debian.org*) echo "deb http://deb.debian.org/debian-security bookworm-security main" ;; esac
} > "$rootfs/etc/apt/sources.list"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | "$engine" import --change 'CMD ["/bin/bash"]' - "$name" >/dev/null
echo "built base image $name"
