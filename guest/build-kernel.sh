#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds the Mags guest kernel from Debian's linux-source-6.1 and the config
# fragment in guest/kernel/mags.config. The result is cached under
# $MAGS_CACHE/kernel/<hash of inputs>/ so a second run only copies it.
# Usage: guest/build-kernel.sh OUTDIR   (writes OUTDIR/vmlinux and OUTDIR/bzImage)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build-kernel.sh OUTDIR}
cache=${MAGS_CACHE:-/var/cache/mags}
src_tar=/usr/src/linux-source-6.1.tar.xz
[ -f "$src_tar" ] || { echo "build-kernel: $src_tar missing (apt-get install linux-source-6.1)" >&2; exit 1; }
ver=$(dpkg-query -W -f='${Version}' linux-source-6.1)
key=$( { echo "$ver"; cat "$here/kernel/mags.config" "$here/build-kernel.sh"; } | sha256sum | cut -c1-16)
dir="$cache/kernel/$key"
if [ ! -f "$dir/vmlinux" ] || [ ! -f "$dir/bzImage" ]; then
	echo "build-kernel: building kernel $key (linux-source $ver), takes a few minutes" >&2
	work=$(mktemp -d "${TMPDIR:-/tmp}/mags-kernel.XXXXXX")
	trap 'rm -rf "$work"' EXIT
	tar -C "$work" -xf "$src_tar"
	k="$work/linux-source-6.1"
	make -s -C "$k" tinyconfig >/dev/null
	(cd "$k" && ./scripts/kconfig/merge_config.sh -m .config "$here/kernel/mags.config" >/dev/null)
	make -s -C "$k" olddefconfig >/dev/null
	# Fail loudly when a requested option did not survive olddefconfig.
	missing=$(grep '^CONFIG_.*=y$' "$here/kernel/mags.config" | while read -r l; do grep -qx "$l" "$k/.config" || echo "$l"; done)
	[ -z "$missing" ] || echo "build-kernel: warning: not set in final config: $missing" >&2
	make -s -C "$k" -j"$(nproc)" bzImage vmlinux
	mkdir -p "$dir.tmp"
	cp "$k/vmlinux" "$k/arch/x86/boot/bzImage" "$k/.config" "$dir.tmp/"
	rm -rf "$dir" && mv "$dir.tmp" "$dir"
fi
mkdir -p "$out"
cp "$dir/vmlinux" "$dir/bzImage" "$out/"
echo "$key" > "$out/kernel.key"
