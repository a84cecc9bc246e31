#!/usr/bin/env bats
# Run as root (test/run does, after the unprivileged pass): agentjail still jails, with every
# capability dropped.  jail.bats also runs again as root; these are the root-specific checks.

load helpers

setup() {
	[ "$(id -u)" -eq 0 ] || skip "root suite: needs uid 0 (test/run runs it as root)"
	fake_home
	setup_workspace
	PROBE_DIR="$(dirname "$PROBE")"
}

jail() {
	aj --net none --ro "$PROBE_DIR" "$@"
}

# Refuse to run anything as root unless agentjail demonstrably jails.
setup_file() {
	[ "$(id -u)" -ne 0 ] || require_jail
}

teardown() {
	if [ -n "${WS:-}" ] && mountpoint -q "$WS/mnt" 2>/dev/null; then
		umount -l "$WS/mnt" || true
	fi
}

@test "root: still jails, with every capability dropped" {
	jail -- "$PROBE" caps
	assert_success
	assert_line --regexp '^CapInh:[[:space:]]+0+$'
	assert_line --regexp '^CapPrm:[[:space:]]+0+$'
	assert_line --regexp '^CapEff:[[:space:]]+0+$'
	assert_line --regexp '^CapBnd:[[:space:]]+0+$'
	assert_line --regexp '^CapAmb:[[:space:]]+0+$'
	assert_line --regexp '^NoNewPrivs:[[:space:]]+1$'
	assert_line --regexp '^Seccomp:[[:space:]]+2$'
}

@test "root: the uid inside is reported (README documents it)" {
	jail -- "$PROBE" ids
	assert_success
	echo "# uid inside the jail when run as root: $output" >&3
	assert_output --regexp '^uid=[0-9]+ euid=[0-9]+ '
}

@test "root: /etc/shadow, /root and host processes are absent" {
	jail -- sh -c 'test -e /etc/shadow && echo SHADOW; test -e /root/.bashrc && echo ROOT-HOME; ls /root 2>/dev/null | head -3; echo "procs $(ls -d /proc/[0-9]* | wc -l)"; echo end'
	assert_success
	refute_output --partial SHADOW
	refute_output --partial ROOT-HOME
	assert_line end
	local n
	n=$(echo "$output" | sed -n 's/^procs //p')
	[ "$n" -le 6 ] || fail "the jail sees $n processes"
}

@test "root: no DAC override: a mode-600 file of another user cannot be read" {
	echo topsecret >"$WS/theirs"
	chown 65534:65534 "$WS/theirs"
	chmod 600 "$WS/theirs"
	jail -- sh -c 'cat theirs 2>/dev/null; echo end'
	assert_success
	refute_output --partial topsecret
}

@test "root: no chown, no mknod, no host file writes" {
	echo x >"$WS/mine"
	local before
	before=$(sha256sum /etc/passwd)
	jail -- sh -c '
		chown 1234:1234 mine 2>/dev/null && echo CHOWN-WORKED
		mknod ./disk b 8 0 2>/dev/null && echo MKNOD-WORKED
		# opening for append writes nothing: harmless even if the jail were broken
		( : >> /etc/passwd ) 2>/dev/null && echo PASSWD-WRITABLE
		echo end'
	assert_success
	assert_line end
	refute_output --partial WORKED
	refute_output --partial WRITABLE
	[ "$(stat -c %u "$WS/mine")" = 0 ] || fail "the jail chowned a workspace file"
	[ "$(sha256sum /etc/passwd)" = "$before" ]
}

@test "root: mount, unshare, raw sockets and AF_PACKET refused even as root" {
	mkdir "$WS/mnt"
	jail -- sh -c "for c in unshare-user clone-newuser 'mount-tmpfs $WS/mnt' raw-socket af_packet bpf 'setns /proc/self/ns/net'; do printf '%s: ' \"\$c\"; '$PROBE' \$c; done; echo end"
	assert_success
	assert_line end
	refute_output --regexp ': ok'
}

@test "root: kill -9 of agentjail leaves nothing behind" {
	local m="ajrk$RANDOM$RANDOM"
	cp /bin/sleep "$WS/$m"
	"$AJ" --net none -- sh -c "./$m 300 & touch ready; wait" </dev/null >/dev/null 2>&1 3>&- &
	local pid=$!
	wait_for_file "$WS/ready" 10 || { kill -KILL "$pid"; fail "never started"; }
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null || true
	local n=50
	while pgrep -f -- "$m" >/dev/null && [ $n -gt 0 ]; do
		sleep 0.1
		n=$((n - 1))
	done
	! pgrep -f -- "$m" >/dev/null || fail "left behind: $(pgrep -af -- "$m")"
}

# The proxy's maps, read as root (the proxy is not dumpable, so its own user cannot).
proxy_maps() {
	"$AJ" -q "$@" -- sleep 3 &
	local aj=$! n=50 p=
	while [ $n -gt 0 ] && [ -z "$p" ]; do
		p="$(pgrep -P "$aj" -x agentjail-proxy | head -n1)"
		sleep 0.1
		n=$((n - 1))
	done
	sleep 0.3 # past its start-up and confinement
	[ -n "$p" ] && cat "/proc/$p/maps"
	kill "$aj" 2>/dev/null || true
	wait "$aj" 2>/dev/null || true
}

@test "root: a proxy that only tunnels never loads OpenSSL; one that intercepts does" {
	run proxy_maps --allow example.test
	assert_success
	assert_output --partial libc
	refute_output --partial libssl
	refute_output --partial libcrypto
	export AJ_ROOT_TOKEN=root-test-value-0123456789
	run proxy_maps --allow example.test --secret AJ_ROOT_TOKEN@example.test
	assert_success
	assert_output --partial libssl.so.3
}
