#!/usr/bin/env bash
# Unpack the built gateway image's file system and its configuration for a chroot smoke test.
#
#   sudo docker/export_rootfs.sh var/image/rootfs   # writes rootfs/ and rootfs.config.json
#
# `podman run` does not work on our build machines; chroot into the exported file system runs
# the image's own python, venv, user, environment, entrypoint and HEALTHCHECK instead.
source "$(dirname "$0")/podman.sh"
need_root
dest="${1:?usage: export_rootfs.sh DEST_DIR}"

podman_ image exists "$EDGE_TAG" || {
  echo "export_rootfs.sh: no image $EDGE_TAG; build it first (make image)" >&2
  exit 1
}
rm -rf "$dest"
mkdir -p "$dest"
name="shelfcast-export-$$"
podman_ create --name "$name" "$EDGE_TAG" >/dev/null
trap 'podman_ rm --force "$name" >/dev/null 2>&1 || true' EXIT
podman_ export "$name" | tar -C "$dest" --numeric-owner -xf -
podman_ image inspect "$EDGE_TAG" >"$dest.config.json"
log "exported $EDGE_TAG to $dest ($(du -sm "$dest" | cut -f1) MB)"
