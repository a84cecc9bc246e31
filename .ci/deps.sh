#!/bin/sh
# .ci/deps.sh: install what agentjail needs to build and test on Debian 12 (bookworm), only
# the packages that are missing, so that a re-run is fast.  Run as root (or with sudo).
set -eu

PKGS="build-essential pkg-config libcap-dev libseccomp-dev libssl-dev libinih-dev
bats bats-support bats-assert curl git python3 nodejs openssl ca-certificates
iproute2 procps psmisc util-linux clang libclang-rt-14-dev bubblewrap hyperfine wrk
zsh pre-commit shellcheck python3-yaml groff man-db cppcheck clang-tidy valgrind
golang-go cargo"

missing=""
for p in $PKGS; do
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$st" = installed ] || missing="$missing $p"
done

if [ -z "$missing" ]; then
	echo "deps: all packages present"
	exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
	echo "deps: missing:$missing (and no apt-get: install them by hand)" >&2
	exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO="sudo"
	else
		echo "deps: missing:$missing; run as root (no sudo here)" >&2
		exit 1
	fi
fi

echo "deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
