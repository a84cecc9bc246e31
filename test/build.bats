#!/usr/bin/env bats
# What the binary loads: the launcher maps neither OpenSSL nor libseccomp (a start without
# TLS does not pay for them); the proxy loads OpenSSL when it intercepts, and a broken
# OpenSSL fails the run with 125 and a reason, never a proxy without TLS.

load helpers

@test "build: agentjail needs neither libssl, libcrypto nor libseccomp at load time" {
	run readelf -d "$AJ"
	assert_success
	assert_output --partial 'NEEDED'
	refute_output --partial 'libssl'
	refute_output --partial 'libcrypto'
	refute_output --partial 'libseccomp'
}

@test "build: the launcher of a run with the proxy on maps no OpenSSL" {
	setup_workspace
	fake_home
	"$AJ" -q --allow example.test -- sleep 3 &
	local pid=$! i
	for i in $(seq 50); do
		grep -q 'ld-linux\|ld-musl\|libc' "/proc/$pid/maps" 2>/dev/null && break
		sleep 0.1
	done
	run cat "/proc/$pid/maps"
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	assert_success
	assert_output --partial libcap
	refute_output --partial libssl
	refute_output --partial libcrypto
}

@test "build: the seccomp filter was compiled at build time for this machine" {
	run "$AJ" --version
	assert_success
	assert_output --regexp 'filters compiled by libseccomp [0-9]+\.[0-9]+'
}

@test "build: a broken libssl.so.3 fails a run with a secret: 125, the library named" {
	setup_workspace
	fake_home
	mkdir -p "$BATS_TEST_TMPDIR/lib"
	echo 'not an ELF object' >"$BATS_TEST_TMPDIR/lib/libssl.so.3"
	export AJ_BUILD_TOKEN=build-test-value-0123456789
	LD_LIBRARY_PATH="$BATS_TEST_TMPDIR/lib" run "$AJ" --secret AJ_BUILD_TOKEN@example.test \
		-- sh -c 'echo ran'
	assert_equal "$status" 125
	assert_output --partial 'cannot load OpenSSL (libssl.so.3)'
	refute_output --partial ran
	refute_output --partial build-test-value
}

@test "build: with a working OpenSSL the same run starts and the proxy mints the run CA" {
	setup_workspace
	fake_home
	export AJ_BUILD_TOKEN=build-test-value-0123456789
	aj_sep -q --secret AJ_BUILD_TOKEN@example.test -- sh -c 'head -1 /etc/agentjail/run-ca.pem'
	assert_success
	assert_output --partial 'BEGIN CERTIFICATE'
}
