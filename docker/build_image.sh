#!/usr/bin/env bash
# Build the gateway image from Dockerfile.edge with podman (no Docker engine, no registry).
#
#   sudo docker/build_image.sh                       # FROM the local debootstrapped base
#   BASE_IMAGE=python:3.12-slim sudo docker/build_image.sh   # where a registry is reachable
#
# `--isolation chroot` is what runs RUN steps on our build machines; `--format docker` keeps the
# HEALTHCHECK (the OCI image format has no field for it and podman would drop it). Without
# --layers=false every instruction copies the whole root file system in the vfs store (~10 min).
source "$(dirname "$0")/podman.sh"
need_root
ensure_tools

if [ -z "${BASE_IMAGE:-}" ]; then
  bash "$REPO_ROOT/docker/build_base.sh"
  BASE_IMAGE="$BASE_TAG"
  pull=never
else
  pull=missing
fi

# Where this machine reaches PyPI through a proxy with its own CA, lend that CA bundle to the
# build's RUN steps (mounted, so it never lands in a layer).
extra=()
host_cert="${PIP_CERT:-$(python3 -m pip config get global.cert 2>/dev/null || true)}"
if [ -n "$host_cert" ] && [ -f "$host_cert" ]; then
  extra+=(--volume "$host_cert:/run/build-ca.crt:ro" --build-arg PIP_CERT=/run/build-ca.crt)
fi

# The image's OCI labels: version from pyproject.toml, the commit built, where its source lives.
version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$REPO_ROOT/pyproject.toml" | head -n 1)
revision=$(git -C "$REPO_ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
if [ "$revision" != unknown ] && [ -n "$(git -C "$REPO_ROOT" status --porcelain --untracked-files=no)" ]; then
  revision="$revision-dirty"  # built from uncommitted changes: the commit alone does not say what
fi
source_url=$(git -C "$REPO_ROOT" config --get remote.origin.url 2>/dev/null || echo unknown)
extra+=(--build-arg VERSION="${version:-unknown}" --build-arg REVISION="$revision" \
        --build-arg SOURCE="$source_url")

log "podman build -f Dockerfile.edge --build-arg BASE_IMAGE=$BASE_IMAGE -t $EDGE_TAG"
start=$(date +%s)
podman_ build --isolation chroot --format docker --pull="$pull" --layers=false \
  --build-arg BASE_IMAGE="$BASE_IMAGE" "${extra[@]}" \
  -f "$REPO_ROOT/Dockerfile.edge" -t "$EDGE_TAG" "$REPO_ROOT"
podman_ image prune --force >/dev/null
size=$(podman_ image inspect --format '{{.Size}}' "$EDGE_TAG")
log "built $EDGE_TAG in $(($(date +%s) - start)) s: $((size / 1000000)) MB"
