# Shared settings for the image scripts (sourced, not run).
#
# No Docker engine runs on our build machines and `podman run` does not work there, but
# `podman build --isolation chroot` does. We keep the project's images in their own vfs store
# under var/ so a build never depends on (or disturbs) the machine's default container storage,
# and `make clean` removes it with the rest of var/.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
IMAGE_VAR="${IMAGE_VAR:-$REPO_ROOT/var/image}"
PODMAN_ROOT="${PODMAN_ROOT:-$IMAGE_VAR/storage}"
PODMAN_RUNROOT="${PODMAN_RUNROOT:-/run/shelfcast-podman}"
BASE_TAG="${BASE_TAG:-localhost/shelfcast-base:bookworm}"
EDGE_TAG="${EDGE_TAG:-localhost/shelfcast-edge:latest}"
DEBIAN_SUITE="${DEBIAN_SUITE:-bookworm}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

podman_() {
  podman --root "$PODMAN_ROOT" --runroot "$PODMAN_RUNROOT" --storage-driver vfs "$@"
}

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "$(basename "$0"): needs root (debootstrap, chroot and podman's vfs store); run with sudo" >&2
    exit 2
  fi
}

# podman and debootstrap come from Debian; install them when missing (fresh machines).
ensure_tools() {
  local missing=()
  command -v podman >/dev/null 2>&1 || missing+=(podman)
  command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]} (apt-get)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  fi
  export PATH="$PATH:/usr/sbin:/sbin"
}
