#!/usr/bin/env bash
# Install the host tools mvm needs on a Debian machine with Rust.
# Idempotent: installs only what is missing.
set -euo pipefail

APT_PACKAGES=(
  qemu-system-x86   # the VMM (microvm machine type)
  mmdebstrap        # Debian root filesystems for images
  e2fsprogs         # mkfs.ext4 -d: sealing root images, scratch disks
  busybox-static    # the boot-floor benchmark's /init
  cpio kmod lz4 xz-utils zstd
  nix-bin           # nix-instantiate --parse checks the generated flake.nix
  python3 python3-venv
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
