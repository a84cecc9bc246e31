#!/usr/bin/env bats
# Runs every unit-test binary the Makefile built from test/unit/*.c (linked against every
# module but the CLI).  A binary passes when it exits 0.

load helpers

@test "unit: every test/unit/*.c has been built" {
	shopt -s nullglob
	local srcs=("$REPO"/test/unit/*.c) missing=()
	[ ${#srcs[@]} -gt 0 ] || skip "no unit tests in test/unit/"
	for c in "${srcs[@]}"; do
		[ -x "${c%.c}" ] || missing+=("${c##*/}")
	done
	[ ${#missing[@]} -eq 0 ] || fail "not built (run make): ${missing[*]}"
}

@test "unit: every test/unit binary exits 0" {
	shopt -s nullglob
	local bins=() failed=() b rc
	for c in "$REPO"/test/unit/*.c; do
		[ -x "${c%.c}" ] && bins+=("${c%.c}")
	done
	[ ${#bins[@]} -gt 0 ] || skip "no unit-test binaries built"
	cd "$REPO"
	for b in "${bins[@]}"; do
		rc=0
		timeout 120 "$b" >"$BATS_TEST_TMPDIR/out" 2>&1 || rc=$?
		if [ "$rc" -ne 0 ]; then
			failed+=("${b##*/} (exit $rc)")
			echo "--- ${b##*/} exited $rc:"
			tail -n 40 "$BATS_TEST_TMPDIR/out"
		fi
	done
	[ ${#failed[@]} -eq 0 ] || fail "failed: ${failed[*]}"
}
