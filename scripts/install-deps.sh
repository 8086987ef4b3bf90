#!/usr/bin/env bash
# Install the Debian packages mproc needs to build, test and benchmark, when
# they are missing. Safe to run repeatedly; needs root (or sudo) on a fresh
# Debian 12 machine.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libcmocka-dev libsodium-dev libssl-dev
      libpng-dev python3 valgrind clang libclang-rt-14-dev parallel hyperfine
      procps)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing: ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
