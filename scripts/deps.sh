#!/bin/sh
# SPDX-License-Identifier: MIT
# Installs the Debian 12 packages Mags needs to build, run and test.
# A second run returns at once when everything is already installed.
# Usage: scripts/deps.sh   (as root, or with sudo available)
set -eu

PKGS="make gcc clang libclang-rt-14-dev nftables openssh-server wrk tmux
libmicrohttpd-dev libjansson-dev libsqlite3-dev libcurl4-openssl-dev libzstd-dev libssl-dev
libcmocka-dev python3-pytest python3-yaml tzdata
postgresql libpq-dev
qemu-system-x86 qemu-utils runsc
linux-source-6.1 bc flex bison libelf-dev xz-utils cpio
busybox-static e2fsprogs
debootstrap
iproute2 openssh-client curl
nodejs npm awscli chromium"

# one dpkg-query for the whole list; a package it does not know prints nothing
# shellcheck disable=SC2086
installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' $PKGS 2>/dev/null | awk '$2 == "installed" { print $1 }' | sed 's/:.*//' || true)
missing=""
for p in $PKGS; do
	case $p in
	# nodejs from NodeSource bundles npm (and conflicts with Debian's); a pip
	# aws is as good: only ask apt for the command when it is not there
	npm | awscli)
		command -v "${p%cli}" >/dev/null 2>&1 && continue ;;
	esac
	echo "$installed" | grep -qx "$p" || missing="$missing $p"
done
if [ -z "$missing" ]; then
	echo "deps: all packages installed"
	exit 0
fi

echo "deps: installing:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
# shellcheck disable=SC2086  # word splitting of the package list is intended
$SUDO apt-get install -y --no-install-recommends $missing
