#!/usr/bin/env bash
# Build a minimal local base image (Debian + python3 + venv) without any registry.
#
# Real deployments build Dockerfile.edge FROM python:3.12-slim. Our build machines reach only
# the Debian mirror and PyPI, so `make image` first debootstraps a minimal Debian with the
# distribution's python3 (3.11 on bookworm; the project needs >= 3.11) and `podman import`s it.
#
#   sudo docker/build_base.sh          # builds localhost/shelfcast-base:bookworm once
#   FORCE=1 sudo docker/build_base.sh  # rebuilds it
source "$(dirname "$0")/podman.sh"
need_root
ensure_tools

if [ -z "${FORCE:-}" ] && podman_ image exists "$BASE_TAG"; then
  log "base image $BASE_TAG exists (FORCE=1 to rebuild)"
  exit 0
fi

rootfs="$IMAGE_VAR/base-rootfs"
rm -rf "$rootfs"
mkdir -p "$rootfs"
log "debootstrap $DEBIAN_SUITE (minbase + python3) from $DEBIAN_MIRROR into $rootfs"
debootstrap --variant=minbase --include=python3,python3-venv \
  "$DEBIAN_SUITE" "$rootfs" "$DEBIAN_MIRROR" >"$IMAGE_VAR/debootstrap.log" 2>&1 || {
  tail -n 30 "$IMAGE_VAR/debootstrap.log" >&2
  echo "build_base.sh: debootstrap failed (full log: $IMAGE_VAR/debootstrap.log)" >&2
  exit 1
}

# A slim base: no package lists, caches, docs or locales (apt still works after `apt-get update`).
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/cache/debconf/*-old \
  "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
  "$rootfs"/usr/share/locale/* "$rootfs"/var/log/*.log "$rootfs"/tmp/*
find "$rootfs"/usr/lib/python3* -name __pycache__ -type d -prune -exec rm -rf {} +
log "base python: $(chroot "$rootfs" /usr/bin/python3 --version)"

log "podman import -> $BASE_TAG ($(du -sm "$rootfs" | cut -f1) MB rootfs)"
tar -C "$rootfs" --numeric-owner -cf - . | podman_ import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  --message "debootstrap $DEBIAN_SUITE minbase + python3" \
  - "$BASE_TAG" >/dev/null
rm -rf "$rootfs"
log "built $BASE_TAG"
