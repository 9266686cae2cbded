#!/bin/sh
# SPDX-License-Identifier: MIT
# playwright-core (https://playwright.dev), the library that drives headless
# Chromium in the dashboard's browser test (tests/dashboard/run.mjs, run by
# tests/integration/test_dashboard.py). We use Debian's chromium
# (/usr/bin/chromium, scripts/deps.sh), so no browser is downloaded.
#
#   scripts/playwright.sh install   installs playwright-core once into
#                                   $MAGS_CACHE/npm/playwright-core-<version>
#                                   (default /var/cache/mags) and prints its
#                                   node_modules directory; a second run is instant
#
# The version is the one pinned in tests/dashboard/package.json.
# Needs node and npm (scripts/deps.sh) and the npm registry on first install.
set -eu

PLAYWRIGHT_VERSION=1.65.1
CACHE="${MAGS_CACHE:-/var/cache/mags}/npm/playwright-core-$PLAYWRIGHT_VERSION"
MODULES="$CACHE/node_modules"

install() {
	[ -f "$MODULES/playwright-core/package.json" ] && return 0
	mkdir -p "$(dirname "$CACHE")"
	tmp=$(mktemp -d "$CACHE.tmp.XXXXXX")
	# install into a temp dir and rename, so an interrupted install is never used
	if ! PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$tmp" --no-audit --no-fund --loglevel=error \
		"playwright-core@$PLAYWRIGHT_VERSION" >"$tmp.log" 2>&1; then
		cat "$tmp.log" >&2
		rm -rf "$tmp" "$tmp.log"
		echo "playwright.sh: npm install playwright-core@$PLAYWRIGHT_VERSION failed" >&2
		exit 1
	fi
	rm -f "$tmp.log"
	mv "$tmp" "$CACHE" 2>/dev/null || rm -rf "$tmp" # lost a race: another run installed it
}

case "${1:-}" in
install)
	install
	echo "$MODULES"
	;;
*)
	echo "usage: $0 install" >&2
	exit 2
	;;
esac
