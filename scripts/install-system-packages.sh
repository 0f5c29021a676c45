#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages vdmap needs to build, test and benchmark, when they are missing:
#   liburing-dev, build tools (the native addon), fio, qemu-utils, libnbd-bin, python3-libnbd (nbdsh), nbdkit.
# Needs root (or sudo). Idempotent: installs nothing when everything is present.
set -euo pipefail
packages=(liburing-dev build-essential python3 pkg-config fio qemu-utils libnbd-bin python3-libnbd nbdkit util-linux)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]} == 0)); then exit 0; fi
echo "installing: ${missing[*]}"
sudo=""
if [[ $(id -u) != 0 ]]; then sudo=sudo; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
