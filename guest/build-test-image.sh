#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds the tiny root filesystem the test suite boots: busybox-static with a
# link for every applet, mags-agent as /sbin/init and /sbin/mags-agent, the
# host's OpenSSH server (/usr/sbin/sshd with the shared libraries it links and
# the dynamic loader, at the same paths) for SSHD, root's passwd/group/shadow
# entries and the mount points the agent needs. /etc/resolv.conf links to the
# file the agent writes from INIT's dns. No loop mounts: mkfs.ext4 -d copies a
# staging directory into the image.
# Usage: guest/build-test-image.sh AGENT_BINARY OUT.img
set -eu
agent=${1:?usage: build-test-image.sh AGENT_BINARY OUT.img}
out=${2:?usage: build-test-image.sh AGENT_BINARY OUT.img}
busybox=${BUSYBOX:-/bin/busybox}

[ -x "$agent" ] || { echo "build-test-image: $agent: not an executable" >&2; exit 1; }
# Debian's busybox-static ships /bin/busybox; the dynamic busybox package would not run in the guest.
if command -v file >/dev/null && ! file -L "$busybox" | grep -q 'statically linked'; then
	echo "build-test-image: $busybox is not a static busybox (apt-get install busybox-static)" >&2
	exit 1
fi
command -v mkfs.ext4 >/dev/null || PATH=$PATH:/sbin:/usr/sbin
sshd=${SSHD:-/usr/sbin/sshd}
[ -x "$sshd" ] || { echo "build-test-image: $sshd missing (apt-get install openssh-server)" >&2; exit 1; }

stage=$(mktemp -d "${TMPDIR:-/tmp}/mags-img.XXXXXX")
trap 'rm -rf "$stage"' EXIT
r=$stage/root
mkdir -p "$r"
for d in bin sbin usr/bin usr/sbin etc proc sys dev tmp run root var/tmp home; do
	mkdir -p "$r/$d"
done
chmod 1777 "$r/tmp" "$r/var/tmp"
chmod 0700 "$r/root"

cp "$busybox" "$r/bin/busybox"
"$busybox" --list-full | while read -r applet; do
	case $applet in
	bin/busybox | "") continue ;;
	esac
	[ -e "$r/$applet" ] || ln -s /bin/busybox "$r/$applet"
done
ln -sf busybox "$r/bin/sh"

install -m 0755 "$agent" "$r/sbin/mags-agent"
strip "$r/sbin/mags-agent" 2>/dev/null || true
rm -f "$r/sbin/init"
ln -s mags-agent "$r/sbin/init"

# sshd and every library it needs, at the paths ldd names (the loader included)
copy_lib() {
	[ -e "$r$1" ] && return 0
	mkdir -p "$r$(dirname "$1")"
	cp -L "$1" "$r$1"
}
mkdir -p "$r/etc/ssh"
cp "$sshd" "$r/usr/sbin/sshd"
libs=$(ldd "$sshd" | awk '/=> \// { print $3 } /^[[:space:]]*\// { print $1 }')
[ -n "$libs" ] || { echo "build-test-image: ldd $sshd listed no libraries" >&2; exit 1; }
for lib in $libs; do
	copy_lib "$lib"
done
# glibc looks users up in files without this too; say it for builds with other defaults
printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n' > "$r/etc/nsswitch.conf"

# root's password is "*" (no password login), not "!": OpenSSH without PAM
# takes a "!" password for a locked account and refuses even key logins.
cat > "$r/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
sshd:x:100:65534::/run/sshd:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat > "$r/etc/shadow" <<'EOF'
root:*:19000:0:99999:7:::
sshd:*:19000:0:99999:7:::
nobody:*:19000:0:99999:7:::
EOF
chmod 0600 "$r/etc/shadow"
cat > "$r/etc/group" <<'EOF'
root:x:0:
tty:x:5:
nogroup:x:65534:
EOF
echo mags > "$r/etc/hostname"
cat > "$r/etc/hosts" <<'EOF'
127.0.0.1 localhost mags
::1 localhost
EOF
# the agent writes INIT's dns servers there (AGENT_RESOLV_CONF)
ln -sf /run/mags/resolv.conf "$r/etc/resolv.conf"

# content plus slack for ext4 metadata, at least 32 MiB
kib=$(du -sk "$r" | cut -f1)
size_mib=$(( (kib / 1024) + 24 ))
[ "$size_mib" -ge 32 ] || size_mib=32

mkdir -p "$(dirname "$out")"
rm -f "$out.tmp"
mkfs.ext4 -q -F -d "$r" -L mags-root -E root_owner=0:0 "$out.tmp" "${size_mib}M" >/dev/null
mv -f "$out.tmp" "$out"
