#!/usr/bin/env bash
# Put debian:bookworm-slim into podman's store without a registry:
# debootstrap a minimal bookworm from the mirror apt already uses, slim it,
# import it. Does nothing when the image is already there (it is cached
# with the rest of the test's private podman store).
#
# Usage (as root: debootstrap needs it): base-image.sh WORKDIR
#   WORKDIR holds the debootstrap log and, while it runs, the root file system.
#   The image goes into the store podman uses by default, or the one that
#   CONTAINERS_STORAGE_CONF and CONTAINERS_CONF name (tests/test_container.py
#   sets them to its private configuration; see podman.sh).
set -euo pipefail

workdir=${1:?usage: base-image.sh WORKDIR}
image=docker.io/library/debian:bookworm-slim
local_name=localhost/debian:bookworm-slim

if podman image exists "$image"; then
    exit 0
fi

# The mirror apt uses here (deb822 first, then the one-line format).
sources=/etc/apt/sources.list.d/debian.sources
mirror=""
if [ -f "$sources" ]; then
    mirror=$(awk '$1 == "URIs:" { print $2; exit }' "$sources")
elif [ -f /etc/apt/sources.list ]; then
    mirror=$(awk '$1 == "deb" && $2 !~ /^\[/ { print $2; exit }' /etc/apt/sources.list)
fi
mirror=${mirror:-http://deb.debian.org/debian}

mkdir -p "$workdir"
rootfs=$(mktemp -d "$workdir/rootfs.XXXXXX")
trap 'rm -rf "$rootfs"' EXIT

echo "base-image: debootstrap bookworm from $mirror" >&2
debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$workdir/debootstrap.log" 2>&1 \
    || { tail -n 30 "$workdir/debootstrap.log" >&2; exit 1; }

# Same sources as the host (security and updates included), one place only.
if [ -f "$sources" ]; then
    cp "$sources" "$rootfs/etc/apt/sources.list.d/debian.sources"
    rm -f "$rootfs/etc/apt/sources.list"
fi
# Slim it the way the official -slim image is: no caches, lists, docs, locales.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
       "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/* \
       "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/*

tar --numeric-owner -C "$rootfs" -c . \
    | podman import --change 'CMD ["bash"]' - "$local_name" >/dev/null
podman tag "$local_name" "$image"
echo "base-image: imported $image" >&2
