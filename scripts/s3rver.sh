#!/bin/sh
# SPDX-License-Identifier: MIT
# s3rver (https://github.com/jamhall/s3rver): a real S3 endpoint in node, used by
# the object-store tests (tests/integration/test_store.py) and bench/sync.
#
#   scripts/s3rver.sh install           installs s3rver once into
#                                       $MAGS_CACHE/npm/s3rver-<version> (default
#                                       /var/cache/mags) and prints its bin path;
#                                       a second run is instant
#   scripts/s3rver.sh start DIR PORT    starts it in the background on
#                                       127.0.0.1:PORT with data in DIR (pid in
#                                       DIR.pid, log in DIR.log); prints nothing
#                                       and returns once it answers
#   scripts/s3rver.sh stop DIR          stops the one started with DIR
#
# Credentials are s3rver's defaults, access key S3RVER and secret S3RVER; it
# checks SigV4 signatures, so a wrong secret gets 403 SignatureDoesNotMatch.
# Needs node and npm (scripts/deps.sh) and the npm registry on first install.
set -eu

S3RVER_VERSION=3.7.1
CACHE="${MAGS_CACHE:-/var/cache/mags}/npm/s3rver-$S3RVER_VERSION"
BIN="$CACHE/node_modules/.bin/s3rver"

install() {
	[ -x "$BIN" ] && return 0
	mkdir -p "$(dirname "$CACHE")"
	tmp=$(mktemp -d "$CACHE.tmp.XXXXXX")
	# install into a temp dir and rename, so an interrupted install is never used
	if ! npm install --prefix "$tmp" --no-audit --no-fund --loglevel=error "s3rver@$S3RVER_VERSION" >"$tmp.log" 2>&1; then
		cat "$tmp.log" >&2
		rm -rf "$tmp" "$tmp.log"
		echo "s3rver.sh: npm install s3rver@$S3RVER_VERSION failed" >&2
		exit 1
	fi
	rm -f "$tmp.log"
	mv "$tmp" "$CACHE" 2>/dev/null || rm -rf "$tmp" # lost a race: another run installed it
}

answers() {
	# any HTTP reply (s3rver answers GET / with 403 or 200) means it is up
	curl -s -o /dev/null -m 2 "http://127.0.0.1:$1/" 2>/dev/null
}

case "${1:-}" in
install)
	install
	echo "$BIN"
	;;
start)
	[ $# -eq 3 ] || { echo "usage: $0 start DIR PORT" >&2; exit 2; }
	dir=$2 port=$3
	install
	mkdir -p "$dir"
	# s3rver's continuation tokens use DES, which OpenSSL 3 keeps in its legacy provider
	NODE_OPTIONS=--openssl-legacy-provider nohup "$BIN" --silent --address 127.0.0.1 --port "$port" --directory "$dir" >"$dir.log" 2>&1 &
	echo $! >"$dir.pid"
	i=0
	until answers "$port"; do
		i=$((i + 1))
		if [ $i -gt 150 ] || ! kill -0 "$(cat "$dir.pid")" 2>/dev/null; then
			cat "$dir.log" >&2
			echo "s3rver.sh: s3rver did not start on port $port" >&2
			kill "$(cat "$dir.pid")" 2>/dev/null || true
			exit 1
		fi
		sleep 0.1
	done
	;;
stop)
	[ $# -eq 2 ] || { echo "usage: $0 stop DIR" >&2; exit 2; }
	if [ -f "$2.pid" ]; then
		kill "$(cat "$2.pid")" 2>/dev/null || true
		rm -f "$2.pid"
	fi
	;;
*)
	echo "usage: $0 install | start DIR PORT | stop DIR" >&2
	exit 2
	;;
esac
