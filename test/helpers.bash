# shellcheck shell=bash
# Shared helpers for every bats suite: `load helpers` at the top of a .bats file.
#
#   AJ            absolute path of the agentjail binary under test ($AGENTJAIL or ./agentjail)
#   PROBE         absolute path of test/probe (the C syscall probe)
#   REPO          the repository root
#   setup_workspace        fresh empty workspace dir (under $BATS_TEST_TMPDIR), cd into it; sets WS
#   fake_home              fresh $HOME with planted secrets (~/.ssh/id_rsa, ~/.aws/credentials)
#   aj ARGS...             run "$AJ" ARGS... (bats `run`: $status, $output, $lines), with a timeout
#   aj_sep ARGS...         the same with stderr kept apart ($output = stdout, $stderr)
#   start_upstream [ARGS]  start test/upstream.py (HTTPS echo server on 127.0.0.1); exports
#                          UPSTREAM_PORT, UPSTREAM_HTTP_PORT (with --http), UPSTREAM_CA,
#                          UPSTREAM_LOG, UPSTREAM_DIR, UPSTREAM_PID
#   stop_upstream          stop it (call it from teardown)
#   skip_unless_cmd CMD    skip the test, with the reason, when CMD is not installed
#   skip_if_root / skip_unless_root

bats_require_minimum_version 1.5.0

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
AJ="${AGENTJAIL:-$REPO/agentjail}"
case "$AJ" in /*) ;; *) AJ="$REPO/$AJ" ;; esac
PROBE="${AJ_PROBE:-$REPO/test/probe}"
UPSTREAM_PY="$REPO/test/upstream.py"
# Seconds before a hung agentjail run is killed (a hang is a failure, not a stuck CI job).
AJ_TIMEOUT="${AJ_TIMEOUT:-120}"
export AJ PROBE REPO UPSTREAM_PY AJ_TIMEOUT

# Names the upstream's certificate covers by default (tests point them at 127.0.0.1 with
# agentjail's --add-host).
UPSTREAM_NAMES_DEFAULT="example.test,api.example.test,other.test,git.example.test,billing-debug.external.dev,localhost"
UPSTREAM_PIDS=()

_aj_tmp() {
	if [ -n "${BATS_TEST_TMPDIR:-}" ]; then
		echo "$BATS_TEST_TMPDIR"
	elif [ -n "${BATS_FILE_TMPDIR:-}" ]; then
		echo "$BATS_FILE_TMPDIR"
	else
		mktemp -d
	fi
}

# A fresh, empty workspace; the test runs inside it.
setup_workspace() {
	WS="$(mktemp -d "$(_aj_tmp)/ws.XXXXXX")"
	WS="$(cd "$WS" && pwd -P)"
	export WS
	cd "$WS" || return 1
}

# A fake $HOME holding the secrets a jailed command must never see.
fake_home() {
	HOME="$(mktemp -d "$(_aj_tmp)/home.XXXXXX")"
	export HOME
	mkdir -p "$HOME/.ssh" "$HOME/.aws"
	chmod 700 "$HOME/.ssh"
	printf -- '-----BEGIN OPENSSH PRIVATE KEY-----\nAJ-PLANTED-SSH-KEY-%s\n-----END OPENSSH PRIVATE KEY-----\n' \
		"$RANDOM$RANDOM" >"$HOME/.ssh/id_rsa"
	chmod 600 "$HOME/.ssh/id_rsa"
	printf '[default]\naws_access_key_id = AKIAPLANTEDPLANTED00\naws_secret_access_key = AJ-PLANTED-AWS-SECRET\n' \
		>"$HOME/.aws/credentials"
}

# run agentjail under bats' `run`, killed if it hangs.  $status is agentjail's exit status.
aj() {
	run timeout --kill-after=10 "$AJ_TIMEOUT" "$AJ" "$@"
}

# Same, with stdout in $output and stderr in $stderr.
aj_sep() {
	run --separate-stderr timeout --kill-after=10 "$AJ_TIMEOUT" "$AJ" "$@"
}

skip_unless_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip "$c is not installed"
	done
}

skip_if_root() {
	[ "$(id -u)" -ne 0 ] || skip "${1:-meaningless as root}"
}

skip_unless_root() {
	[ "$(id -u)" -eq 0 ] || skip "${1:-needs root}"
}

# Wait (up to $2 seconds, default 10) until file $1 exists (writers create it atomically).
wait_for_file() {
	local f="$1" n=$((${2:-10} * 20))
	while [ ! -e "$f" ] && [ "$n" -gt 0 ]; do
		sleep 0.05
		n=$((n - 1))
	done
	[ -e "$f" ]
}

# start_upstream [--http] [--untrusted] [--names a,b] [--static DIR] [--echo-header N=V] ...
# Every argument but --http goes to test/upstream.py unchanged.
start_upstream() {
	local args=() want_http=0 names="$UPSTREAM_NAMES_DEFAULT"
	while [ $# -gt 0 ]; do
		case "$1" in
		--http) want_http=1 ;;
		--names) names="$2"; shift ;;
		*) args+=("$1") ;;
		esac
		shift
	done
	UPSTREAM_DIR="$(mktemp -d "$(_aj_tmp)/upstream.XXXXXX")"
	UPSTREAM_LOG="$UPSTREAM_DIR/requests.jsonl"
	UPSTREAM_CA="$UPSTREAM_DIR/ca.crt"
	if [ "$want_http" = 1 ]; then
		args+=(--http-port 0 --http-port-file "$UPSTREAM_DIR/http-port")
	fi
	# 3>&- : bats waits for every holder of its fd 3; a server must not keep it.
	python3 "$UPSTREAM_PY" --dir "$UPSTREAM_DIR" --names "$names" --port 0 \
		--port-file "$UPSTREAM_DIR/port" --log "$UPSTREAM_LOG" "${args[@]}" \
		>"$UPSTREAM_DIR/server.out" 2>&1 3>&- </dev/null &
	UPSTREAM_PID=$!
	UPSTREAM_PIDS+=("$UPSTREAM_PID") # a test may start a second one: stop_upstream ends all
	if ! wait_for_file "$UPSTREAM_DIR/port" 20; then
		echo "# upstream did not start:" >&2
		cat "$UPSTREAM_DIR/server.out" >&2
		kill "$UPSTREAM_PID" 2>/dev/null
		return 1
	fi
	UPSTREAM_PORT="$(cat "$UPSTREAM_DIR/port")"
	if [ "$want_http" = 1 ]; then
		wait_for_file "$UPSTREAM_DIR/http-port" 5 || return 1
		UPSTREAM_HTTP_PORT="$(cat "$UPSTREAM_DIR/http-port")"
		export UPSTREAM_HTTP_PORT
	fi
	export UPSTREAM_DIR UPSTREAM_LOG UPSTREAM_CA UPSTREAM_PORT UPSTREAM_PID
}

stop_upstream() {
	local pid

	for pid in ${UPSTREAM_PIDS[@]+"${UPSTREAM_PIDS[@]}"}; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	UPSTREAM_PIDS=()
	UPSTREAM_PID=
}

# require_jail: fail unless "$AJ" demonstrably builds a jail (hostname agentjail, its own mount
# namespace).  Suites that probe privileged operations call it first (setup_file), so that a broken
# agentjail can never turn them into operations on the host (as root above all).
# AJ_NO_JAIL_GUARD=1 skips it (to check the tests against a deliberately broken stand-in).
require_jail() {
	[ "${AJ_NO_JAIL_GUARD:-0}" = 1 ] && return 0
	local host_mnt got dir
	host_mnt="$(readlink /proc/self/ns/mnt)"
	dir="$(mktemp -d "$(_aj_tmp)/guard.XXXXXX")"
	got="$(cd "$dir" && timeout 30 "$AJ" --net none -- /bin/sh -c \
		'echo "$(cat /proc/sys/kernel/hostname) $(readlink /proc/self/ns/mnt)"' 2>&1)" || true
	case "$got" in
	"agentjail mnt:"*) ;;
	*)
		echo "agentjail does not jail (got: $got); refusing to run these tests" >&2
		return 1
		;;
	esac
	if [ "$got" = "agentjail $host_mnt" ]; then
		echo "agentjail runs in the host's mount namespace; refusing to run these tests" >&2
		return 1
	fi
}

# A marker unique to this test, for pgrep-based "nothing left behind" checks.
unique_marker() {
	echo "ajmark$$x${BATS_TEST_NUMBER:-0}x$RANDOM$RANDOM"
}
