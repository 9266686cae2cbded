#!/bin/sh
# SPDX-License-Identifier: MIT
# Sets Mags up on a fresh Debian 12 machine and runs a first job:
#   1. the Debian packages (scripts/deps.sh),
#   2. make: magsd, mags, mags-agent, the guest kernel (cached by a hash of its
#      inputs in /var/cache/mags; the first build takes a few minutes), the
#      Debian image sandboxes boot by default (its debootstrap + apt phase cached
#      the same way, ~3 minutes the first time) and the busybox test image,
#   3. /usr/local/bin/mags -> build/bin/mags,
#   4. mags run 'echo Hello World' (the CLI starts a local magsd on demand).
# Usage: sudo scripts/setup.sh
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if [ "$(id -u)" -ne 0 ]; then
	echo "setup: run as root (sudo scripts/setup.sh): it installs packages and /usr/local/bin/mags" >&2
	exit 1
fi

scripts/deps.sh
make -j"$(nproc)" all
ln -sf "$root/build/bin/mags" /usr/local/bin/mags
echo "setup: installed /usr/local/bin/mags -> $root/build/bin/mags"
# the local magsd and its config live in ~/.mags; without MAGS_API_URL the CLI
# starts one on 127.0.0.1:7557 and remembers its token
unset MAGS_API_URL MAGS_TOKEN MAGS_API_TOKEN
exec /usr/local/bin/mags run 'echo Hello World'
