#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds the default guest image: Debian 12 (bookworm, minbase) with the
# standard tool set (PKGS below), mags-agent as /sbin/init and /sbin/mags-agent
# (the same paths as the busybox test image, so the same kernel command line
# boots it), root's "*" password (sshd runs without PAM), /etc/resolv.conf
# linked to the file the agent writes from INIT's dns. The output is an ext4
# image the VMs use read-only (the agent mounts /dev/vda as ext4, so no erofs).
#
# Two phases. The slow one (debootstrap + apt-get, minutes) is cached by its
# inputs (this script up to phase 2, hence the package list; the suite, the
# mirror) in
# $MAGS_CACHE/guest/debian-rootfs-<hash>.tar; the fast one (seconds) unpacks
# that tar, puts the agent in and writes the image, every time the agent
# changes. Lean: no recommends, no docs/man pages/locales (dpkg path-exclude),
# no apt lists or caches, no ssh host keys (the agent brings its own).
# procps for ps/top. pip installs system-wide (phase 2 drops Debian's PEP 668
# EXTERNALLY-MANAGED marker: what pip installs lands in the workspace's layer).
# Reproducible where practical: fixed package list, SOURCE_DATE_EPOCH clamps
# every mtime, the tar is sorted by name with numeric owners, the ext4 UUID
# and directory hash seed derive from the cache key. The package versions are
# whatever the mirror serves when the cache is filled: pin them by pointing
# MAGS_DEBIAN_MIRROR at a snapshot.debian.org URL (part of the key).
# Usage: guest/build-debian-image.sh AGENT_BINARY OUT.img   (as root)
set -eu
agent=${1:?usage: build-debian-image.sh AGENT_BINARY OUT.img}
out=${2:?usage: build-debian-image.sh AGENT_BINARY OUT.img}
here=$(cd "$(dirname "$0")" && pwd)
self="$here/$(basename "$0")"
cache=${MAGS_CACHE:-/var/cache/mags}
suite=bookworm
mirror=${MAGS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1704067200}	# 2024-01-01T00:00:00Z
export SOURCE_DATE_EPOCH

# the tool set, one per line, sorted; part of the cache key through this script
PKGS="ca-certificates
curl
gcc
git
jq
libc6-dev
make
nodejs
npm
openssh-client
openssh-server
procps
python3
python3-pip
python3-venv
wget"

die() { echo "build-debian-image: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, chroot, file ownership in the image)"
[ -x "$agent" ] || die "$agent: not an executable"
command -v mkfs.ext4 >/dev/null || PATH=$PATH:/sbin:/usr/sbin
command -v mkfs.ext4 >/dev/null || die "mkfs.ext4 missing (apt-get install e2fsprogs)"
if ! command -v debootstrap >/dev/null; then
	echo "build-debian-image: installing debootstrap" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap >/dev/null ||
		die "debootstrap missing and apt-get install debootstrap failed"
fi

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# the key: this script up to phase 2 (the package list, how the rootfs is made);
# a change to the image assembly below does not rebuild the rootfs
key=$( { echo "$suite $mirror $(uname -m)"; sed '/^# ---- phase 2/q' "$self"; } | sha256sum | cut -c1-16)
tarball="$cache/guest/debian-rootfs-$key.tar"

work=$(mktemp -d "${TMPDIR:-/var/tmp}/mags-debian.XXXXXX")
r=$work/root
cleanup() {
	for m in dev/pts proc sys; do
		mountpoint -q "$r/$m" 2>/dev/null && umount -l "$r/$m"
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# ---- phase 1: the root filesystem (cached) ----------------------------------
if [ ! -f "$tarball" ]; then
	echo "build-debian-image: building rootfs $key ($suite from $mirror), takes a few minutes" >&2
	t=$(now)
	mkdir -p "$r"
	debootstrap --variant=minbase --arch=amd64 "$suite" "$r" "$mirror" >"$work/debootstrap.log" 2>&1 || {
		tail -20 "$work/debootstrap.log" >&2
		die "debootstrap failed (log above)"
	}
	echo "build-debian-image: phase debootstrap: $(since "$t") s" >&2

	t=$(now)
	# no docs, man pages, info or translations from here on (copyrights stay)
	cat > "$r/etc/dpkg/dpkg.cfg.d/01-mags-lean" <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
path-exclude=/usr/share/lintian/*
path-exclude=/usr/share/linda/*
EOF
	cat > "$r/etc/apt/apt.conf.d/01-mags-lean" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
EOF
	# no daemons started by maintainer scripts inside the chroot
	printf '#!/bin/sh\nexit 101\n' > "$r/usr/sbin/policy-rc.d"
	chmod 0755 "$r/usr/sbin/policy-rc.d"
	mount -t proc proc "$r/proc"
	mount -t sysfs sysfs "$r/sys"
	mount -t devpts devpts "$r/dev/pts" 2>/dev/null || true
	# shellcheck disable=SC2086  # the list splits into words on purpose
	if ! chroot "$r" env DEBIAN_FRONTEND=noninteractive LC_ALL=C PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		sh -c 'apt-get update && apt-get install -y --no-install-recommends "$@"' apt $PKGS \
		>"$work/apt.log" 2>&1; then
		tail -30 "$work/apt.log" >&2
		die "apt-get install failed (log above)"
	fi
	chroot "$r" apt-get clean
	umount -l "$r/dev/pts" 2>/dev/null || true
	umount -l "$r/sys"
	umount -l "$r/proc"
	echo "build-debian-image: phase apt-get install: $(since "$t") s" >&2

	t=$(now)
	rm -f "$r/usr/sbin/policy-rc.d"
	# what the excludes did not catch (debootstrap's own packages), caches, logs, keys
	find "$r/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete 2>/dev/null || true
	find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
	find "$r/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} + 2>/dev/null || true
	rm -rf "$r/usr/share/man"/* "$r/usr/share/info"/* "$r/usr/share/lintian" "$r/usr/share/linda" \
		"$r/var/lib/apt/lists"/* "$r/var/cache/apt"/*.bin "$r/var/cache/apt/archives"/*.deb \
		"$r/var/cache/debconf"/*-old "$r/var/lib/dpkg"/*-old "$r/var/cache/ldconfig/aux-cache" \
		"$r/tmp"/* "$r/var/tmp"/* "$r/root/.cache" "$r/root/.npm" \
		"$r/etc/ssh"/ssh_host_* "$r/etc/machine-id" "$r/var/lib/dbus/machine-id"
	mkdir -p "$r/var/lib/apt/lists/partial"
	find "$r/var/log" -type f -exec truncate -s 0 {} +
	rm -f "$r/var/log/bootstrap.log" "$r/var/log/alternatives.log" "$r/var/log/apt/eipp.log.xz"
	# empty machine-id: systemd-less, but some tools read it
	: > "$r/etc/machine-id"
	# root: "*", not "!": OpenSSH without PAM refuses even key logins to a "!" account
	sed -i 's/^root:[^:]*:/root:*:/' "$r/etc/shadow"
	grep -q '^sshd:' "$r/etc/passwd" || die "no sshd user (openssh-server's postinst did not run?)"
	echo mags > "$r/etc/hostname"
	cat > "$r/etc/hosts" <<'EOF'
127.0.0.1 localhost mags
::1 localhost
EOF
	# the agent writes INIT's dns servers there (AGENT_RESOLV_CONF)
	rm -f "$r/etc/resolv.conf"
	ln -s /run/mags/resolv.conf "$r/etc/resolv.conf"
	# the mount points and dirs the agent uses (boot.c, sshd.c)
	for d in proc sys dev tmp run root var/tmp home; do
		mkdir -p "$r/$d"
	done
	chmod 1777 "$r/tmp" "$r/var/tmp"
	chmod 0700 "$r/root"
	[ -x "$r/usr/sbin/sshd" ] || die "no /usr/sbin/sshd in the rootfs"
	mkdir -p "$cache/guest"
	# day counts in /etc/shadow (users added today) pinned too
	days=$(( SOURCE_DATE_EPOCH / 86400 ))
	sed -i -E "s/^([^:]*:[^:]*:)[0-9]+:/\1$days:/" "$r/etc/shadow" "$r/etc/shadow-" 2>/dev/null || true
	# --xattrs makes a pax archive: leave out its atime and ctime records
	tar -C "$r" --sort=name --numeric-owner --xattrs --xattrs-include='*' \
		--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
		--mtime="@$SOURCE_DATE_EPOCH" --clamp-mtime -cf "$tarball.tmp" .
	mv -f "$tarball.tmp" "$tarball"
	rm -rf "$r"
	echo "build-debian-image: phase clean + tar: $(since "$t") s ($(du -m "$tarball" | cut -f1) MiB tar)" >&2
else
	echo "build-debian-image: rootfs $key cached ($tarball)" >&2
fi

# ---- phase 2: the image (every time) ----------------------------------------
t=$(now)
mkdir -p "$r"
tar -C "$r" --numeric-owner --xattrs --xattrs-include='*' -xf "$tarball"
install -m 0755 "$agent" "$r/usr/sbin/mags-agent"
strip "$r/usr/sbin/mags-agent" 2>/dev/null || true
touch -h -d "@$SOURCE_DATE_EPOCH" "$r/usr/sbin/mags-agent"
# /sbin links to usr/sbin (merged /usr): /sbin/mags-agent and /sbin/init resolve there
rm -f "$r/usr/sbin/init"
ln -s mags-agent "$r/usr/sbin/init"
touch -h -d "@$SOURCE_DATE_EPOCH" "$r/usr/sbin/init" "$r/usr/sbin"
[ -x "$r/sbin/mags-agent" ] || die "/sbin/mags-agent does not resolve in the image"
# PEP 668: Debian marks its python3 "externally managed", so a plain `pip install
# pkg` refuses to run. In a sandbox that is what users and agents type, and it
# is harmless here: the image is read-only and shared,
# pip writes to /usr/local/lib/python3.X/dist-packages, which lands in the
# workspace's own layer; the image's Debian packages under /usr/lib stay as they
# are. (Here, not in phase 1: the cached rootfs and its key stay the same.)
for f in "$r"/usr/lib/python3*/EXTERNALLY-MANAGED; do
	[ -e "$f" ] || continue
	rm -f "$f"
	touch -h -d "@$SOURCE_DATE_EPOCH" "$(dirname "$f")"
done

# content plus ~10% and 64 MiB of slack for ext4 metadata
kib=$(du -sk "$r" | cut -f1)
size_mib=$(( kib / 1024 + kib / 10240 + 64 ))
uuid=$(echo "mags-uuid-$key" | sha256sum | sed -E 's/^(.{8})(.{4})(.{4})(.{4})(.{12}).*/\1-\2-\3-\4-\5/')
seed=$(echo "mags-seed-$key" | sha256sum | sed -E 's/^(.{8})(.{4})(.{4})(.{4})(.{12}).*/\1-\2-\3-\4-\5/')
mkdir -p "$(dirname "$out")"
rm -f "$out.tmp"
E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH mkfs.ext4 -q -F -d "$r" -L mags-root -U "$uuid" \
	-E root_owner=0:0,hash_seed="$seed" -m 0 "$out.tmp" "${size_mib}M" >/dev/null
# mkfs -d copies ctime and atime as unpacking left them: pin them too (every
# inode in use: 2, the root, and 11 on, as mkfs -d hands them out in order)
used=$(dumpe2fs -h "$out.tmp" 2>/dev/null | awk -F: '/^Inode count/ { c = $2 } /^Free inodes/ { f = $2 } END { print c - f }')
for i in 2 $(seq 11 "$used"); do
	echo "sif <$i> ctime @$SOURCE_DATE_EPOCH"
	echo "sif <$i> atime @$SOURCE_DATE_EPOCH"
done > "$work/times.debugfs"
E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH debugfs -w -f "$work/times.debugfs" "$out.tmp" >/dev/null 2>"$work/debugfs.log" ||
	die "debugfs failed: $(tail -3 "$work/debugfs.log")"
mv -f "$out.tmp" "$out"
echo "build-debian-image: phase image: $(since "$t") s" >&2
echo "build-debian-image: $out: $(du -m --apparent-size "$out" | cut -f1) MiB (content $(( kib / 1024 )) MiB, rootfs $key)" >&2
