#!/usr/bin/env bash
# Installs the Debian packages sigflow needs, only those missing. Idempotent.
set -euo pipefail
pkgs=(build-essential cmake pkg-config
      libmodbus-dev libzmq3-dev libprotobuf-c-dev protobuf-c-compiler libjansson-dev
      libsdl2-dev libsdl2-ttf-dev libsdl2-image-dev libcriterion-dev
      fonts-dejavu-core fonts-wqy-microhei mbpoll xvfb xauth clang libclang-rt-14-dev
      iproute2 iptables libnetfilter-queue-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#pkgs[@]} packages present" >&2
  exit 0
fi
echo "install-deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
