#!/usr/bin/env bats
# The jail (issue 2): one test per property.  Runs as an unprivileged user (test/run), and again as
# root (AJ_AS_ROOT=1), and against the ASan build.  Where a refusal could come from the kernel's own
# settings rather than the jail, the same probe runs outside the jail first as a control.

load helpers

setup() {
	fake_home
	setup_workspace
	PROBE_DIR="$(dirname "$PROBE")"
	[ -x "$PROBE" ] || fail "no test probe at $PROBE (make)"
}

setup_file() {
	require_jail
}

teardown() {
	local p f
	# Whatever a broken jail let a test create on the host goes (only the test's own names).
	for f in ${CLEANUP_FILES:-}; do
		rm -f -- "$f" 2>/dev/null || true
	done
	for f in ${MOUNT_CLEANUP:-}; do
		if mountpoint -q "$f" 2>/dev/null; then umount -l "$f" 2>/dev/null || true; fi
	done
	if [ -n "${MARKER:-}" ]; then
		pkill -KILL -f -- "$MARKER" 2>/dev/null || true
	fi
	for p in ${BG_PIDS:-}; do
		kill -KILL "$p" 2>/dev/null || true
	done
}

# jail ARGS... -- CMD: agentjail without network, the probe's directory readable.
jail() {
	aj --net none --ro "$PROBE_DIR" "$@"
}

jail_sep() {
	aj_sep --net none --ro "$PROBE_DIR" "$@"
}

# The probe run in the jail as the command itself.
jprobe() {
	jail -- "$PROBE" "$@"
}

# Outcome of the probe outside the jail (the control): "ok" or the errno name.
control() {
	"$PROBE" "$@" 2>/dev/null | tr -d '\r' | tail -n 1
}

# assert_refused [ERRNO]: the last run was a probe that failed (with ERRNO when given).
assert_refused() {
	if [ "$status" -ne 1 ]; then
		fail "expected the probe to be refused (exit 1), got exit $status: $output"
	fi
	if [ -n "${1:-}" ]; then
		assert_output --partial "$1"
	fi
}

# Wait (up to 10 s) for a file the jailed command creates once it is running.
wait_ready() {
	wait_for_file "$1" 10 || fail "the jailed command never became ready ($1): $(cat "$BATS_TEST_TMPDIR/bg.out" 2>/dev/null)"
}

# wait_rc PID [SECONDS]: wait for background job PID; its exit status lands in RC.  Kills it
# and fails when it does not exit in time (a signal that was not forwarded must not hang the suite).
wait_rc() {
	local pid="$1" secs="${2:-20}" n
	n=$((secs * 10))
	while alive "$pid" && [ "$n" -gt 0 ]; do
		sleep 0.1
		n=$((n - 1))
	done
	if alive "$pid"; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		fail "agentjail still running ${secs}s after the signal; its tree: $(descendants "$pid" | tr '\n' ' ')"
	fi
	RC=0
	wait "$pid" || RC=$?
}

# Every process in the tree under PID (not PID itself), from /proc.
descendants() {
	local parent="$1" kids k
	kids=$(ps -o pid= --ppid "$parent" 2>/dev/null)
	for k in $kids; do
		echo "$k"
		descendants "$k"
	done
}

# True when PID is alive and not a zombie.
alive() {
	local st
	st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# No live process whose command line contains $1 (after up to $2 seconds, default 5).
assert_no_process() {
	local marker="$1" n=$((${2:-5} * 10)) p left
	while [ "$n" -gt 0 ]; do
		left=""
		for p in $(pgrep -f -- "$marker" 2>/dev/null); do
			alive "$p" && left="$left $p"
		done
		[ -z "$left" ] && return 0
		sleep 0.1
		n=$((n - 1))
	done
	ps -o pid,ppid,stat,args -p "${left# }" >&2 || true
	fail "processes left behind:$left"
}

# ---------------------------------------------------------------------------------------------
# Filesystem view

@test "workspace: writable, and the command starts in it" {
	jail -- sh -c 'pwd; echo hello > made-inside; mkdir -p sub/dir && echo x > sub/dir/f'
	assert_success
	assert_line --index 0 "$WS"
	[ "$(cat "$WS/made-inside")" = hello ]
	[ -f "$WS/sub/dir/f" ]
	# the caller's uid is mapped to itself: what the command makes belongs to the caller
	[ "$(stat -c %u:%g "$WS/made-inside")" = "$(id -u):$(id -g)" ]
}

@test "workspace: -C DIR selects it" {
	local other
	other="$(mktemp -d "$BATS_TEST_TMPDIR/other.XXXXXX")"
	other="$(cd "$other" && pwd -P)"
	jail -C "$other" -- sh -c 'pwd; echo y > via-C'
	assert_success
	assert_line --index 0 "$other"
	[ -f "$other/via-C" ]
	[ ! -e "$WS/via-C" ]
}

@test "filesystem: nothing outside the workspace is writable or reaches the host" {
	local m="ajw$RANDOM$RANDOM" parent d
	parent="$(dirname "$WS")"
	for d in /usr /bin /etc / "$parent" "$HOME" /tmp /var/tmp /dev/shm; do
		CLEANUP_FILES="${CLEANUP_FILES:-} $d/$m"
	done
	jail -- sh -c "
		for d in /usr /bin /etc / '$parent' \"\$HOME\" /tmp /var/tmp /dev/shm; do
			if ( echo x > \"\$d/$m\" ) 2>/dev/null; then echo \"wrote \$d\"; fi
		done
		if ( echo x > /usr/$m ) 2>/dev/null; then echo USR-WRITABLE; fi
		if ( echo x > /etc/$m ) 2>/dev/null; then echo ETC-WRITABLE; fi
		true"
	assert_success
	refute_output --partial USR-WRITABLE
	refute_output --partial ETC-WRITABLE
	# Whatever the jail's own tmpfs allowed, nothing of it may appear on the host.
	for d in /usr /bin /etc / "$parent" "$HOME" /tmp /var/tmp /dev/shm; do
		[ ! -e "$d/$m" ] || fail "the jail wrote $d/$m on the host"
	done
}

@test "filesystem: siblings of the workspace and host /tmp are absent" {
	local m="ajs$RANDOM$RANDOM"
	echo secret >"$BATS_TEST_TMPDIR/sibling-$m"
	echo secret >"/tmp/host-$m"
	jail -- sh -c "test ! -e '$BATS_TEST_TMPDIR/sibling-$m' && test ! -e '/tmp/host-$m' && echo gone"
	rm -f "/tmp/host-$m"
	assert_success
	assert_output gone
}

@test "filesystem: \$HOME/.ssh and a planted ~/.aws/credentials are absent" {
	jail -- sh -c "
		for f in '$HOME/.ssh' '$HOME/.ssh/id_rsa' '$HOME/.aws/credentials' \"\$HOME/.ssh\" \"\$HOME/.aws\"; do
			test -e \"\$f\" && echo \"PRESENT \$f\"
		done
		cat '$HOME/.ssh/id_rsa' '$HOME/.aws/credentials' 2>/dev/null
		ls -A \"\$HOME\"; echo end"
	assert_success
	refute_output --partial PRESENT
	refute_output --partial AJ-PLANTED
	assert_line end
}

@test "filesystem: workspace inside \$HOME: the rest of \$HOME stays absent" {
	local ws="$HOME/project"
	mkdir -p "$ws"
	cd "$ws"
	jail -- sh -c "pwd; echo ok > f; ls -A '$HOME'; test -e '$HOME/.ssh' && echo PRESENT-SSH; test -e '$HOME/.aws' && echo PRESENT-AWS; true"
	assert_success
	assert_line --index 0 "$ws"
	refute_output --partial PRESENT
	[ "$(cat "$ws/f")" = ok ]
}

@test "filesystem: \$HOME is an empty tmpfs, /tmp is fresh" {
	local m="ajf$RANDOM$RANDOM"
	CLEANUP_FILES="/tmp/$m"
	jail -- sh -c "ls -A \"\$HOME\" | wc -l; echo x > \"\$HOME/$m\" && echo x > /tmp/$m && echo writable"
	[ ! -e "/tmp/$m" ] || fail "the jail's /tmp is the host's"
	assert_success
	assert_line --index 0 0
	assert_line writable
}

@test "filesystem: /etc/shadow, sudoers and ssh host keys are absent; passwd is synthesized" {
	jail -- sh -c '
		for f in /etc/shadow /etc/gshadow /etc/sudoers /etc/sudoers.d /etc/ssh/ssh_host_rsa_key \
			/etc/ssh/ssh_host_ed25519_key /etc/ssh/ssh_host_ecdsa_key; do
			test -e "$f" && echo "PRESENT $f"
		done
		cat /etc/shadow 2>/dev/null | head -1
		echo "users $(wc -l < /etc/passwd)"
		grep -c "^daemon:" /etc/passwd || true
		cat /etc/passwd'
	assert_success
	refute_output --partial PRESENT
	assert_line --index 0 --regexp '^users [1-4]$'
	assert_line --index 1 0
}

@test "filesystem: symlinks planted in the workspace make agentjail create nothing outside it" {
	skip_unless_cmd git
	git init -q .
	local m="ajln$RANDOM$RANDOM"
	CLEANUP_FILES="$HOME/$m-gitmodules $HOME/$m-config $BATS_TEST_TMPDIR/$m-gitmodules"
	# Dangling links where the jail protects files that may not exist yet: if agentjail
	# followed them while preparing its read-only mounts, it would create the targets (outside
	# the workspace, on the host, with the caller's rights).
	ln -s "$HOME/$m-gitmodules" .gitmodules
	rm -rf .git/hooks
	ln -s "$HOME/$m-hooks" .git/hooks
	mkdir -p sub
	ln -s "$BATS_TEST_TMPDIR/$m-gitmodules" sub/.gitmodules
	jail -- sh -c 'echo end'
	assert_success
	assert_line end
	[ ! -e "$HOME/$m-gitmodules" ] || fail "agentjail created $HOME/$m-gitmodules through a planted symlink"
	[ ! -e "$HOME/$m-hooks" ] || fail "agentjail created $HOME/$m-hooks through a planted symlink"
	[ ! -e "$BATS_TEST_TMPDIR/$m-gitmodules" ] || fail "created through sub/.gitmodules"
	[ -L .gitmodules ] && [ -L .git/hooks ] || fail "agentjail replaced the planted links"
	rm -rf "$HOME/$m-hooks"
}

@test "filesystem: system directories are read-only" {
	local m="ajro$RANDOM$RANDOM" d
	for d in /usr /usr/bin /bin /lib /etc; do
		CLEANUP_FILES="${CLEANUP_FILES:-} $d/.ajtest-$m"
	done
	jail -- sh -c 'for d in /usr /usr/bin /bin /lib /etc; do
			[ -e "$d" ] || continue
			touch "$d/.ajtest-'"$m"'" 2>/dev/null && echo "WRITABLE $d"
		done; echo end'
	assert_success
	refute_output --partial WRITABLE
}

@test "filesystem: /dev is minimal (no disks, no kmsg, no mem)" {
	jail -- sh -c 'ls -A /dev; echo ---; find /dev -type b 2>/dev/null; for f in /dev/kmsg /dev/mem /dev/port /dev/sda /dev/vda /dev/nvme0 /dev/kvm /dev/fuse; do test -e $f && echo "PRESENT $f"; done; for f in null zero full random urandom tty; do test -c /dev/$f || echo "MISSING $f"; done; for f in /dev/pts/*; do case "$f" in /dev/pts/ptmx) ;; *) echo "PRESENT host pty $f";; esac; done; echo end'
	assert_success
	refute_output --partial PRESENT
	refute_output --partial MISSING
	assert_line end
}

@test "view flags: --ro binds read-only, --rw read-write, --hide masks" {
	local ro rw
	ro="$(mktemp -d "$BATS_TEST_TMPDIR/ro.XXXXXX")"
	rw="$(mktemp -d "$BATS_TEST_TMPDIR/rw.XXXXXX")"
	echo readable >"$ro/file"
	echo 'SECRET=hunter2' >"$WS/.env"
	mkdir -p "$WS/private"
	echo private >"$WS/private/file"
	jail --ro "$ro" --rw "$rw" --hide "$WS/.env" --hide "$WS/private" -- sh -c "
		cat '$ro/file'
		touch '$ro/new' 2>/dev/null && echo RO-WRITABLE
		echo w > '$rw/new' && echo rw-ok
		cat '$WS/.env' 2>/dev/null
		cat '$WS/private/file' 2>/dev/null
		echo end"
	assert_success
	assert_line readable
	assert_line rw-ok
	assert_line end
	refute_output --partial RO-WRITABLE
	refute_output --partial hunter2
	refute_output --partial private
	[ -f "$rw/new" ]
	[ ! -e "$ro/new" ]
	[ "$(cat "$WS/.env")" = 'SECRET=hunter2' ]
}

# ---------------------------------------------------------------------------------------------
# Environment

@test "env: planted AWS_SECRET_ACCESS_KEY, GITHUB_TOKEN and friends are absent" {
	local v="AJPLANTED$RANDOM$RANDOM"
	AWS_SECRET_ACCESS_KEY="$v-aws" GITHUB_TOKEN="$v-gh" NPM_TOKEN="$v-npm" MY_API_KEY="$v-key" \
		AWS_ACCESS_KEY_ID="$v-id" SSH_AUTH_SOCK="/tmp/$v.sock" DISPLAY=":$v" \
		DBUS_SESSION_BUS_ADDRESS="unix:path=/tmp/$v" \
		jail -- sh -c 'env; cat /proc/self/environ | tr "\0" "\n"; echo end'
	assert_success
	assert_line end
	refute_output --partial "$v"
	refute_output --regexp '^(AWS_[A-Z_]*|GITHUB_TOKEN|NPM_TOKEN|MY_API_KEY|SSH_AUTH_SOCK|DISPLAY|DBUS_[A-Z_]*)='
}

@test "env: scrubbed to an allowlist; --env passes or sets one variable" {
	AJ_SOME_RANDOM_VAR=leak PASSME=passed LANG=C.UTF-8 \
		jail --env PASSME --env SETME=set -- env
	assert_success
	refute_output --partial AJ_SOME_RANDOM_VAR
	refute_output --partial leak
	assert_line PASSME=passed
	assert_line SETME=set
	assert_line --regexp '^PATH=.+'
	assert_line --regexp '^HOME=.+'
	assert_line LANG=C.UTF-8
	# BATS_* and other harness variables must not leak either
	refute_output --regexp '^BATS_'
}

@test "env: /proc/1/environ shows no host variable; init is not dumpable" {
	local v="AJPLANTED$RANDOM$RANDOM"
	GITHUB_TOKEN="$v" SOME_HOST_VAR="$v" jail -- sh -c '
		for p in /proc/[0-9]*; do cat $p/environ 2>/dev/null | tr "\0" "\n"; done
		cat /proc/1/environ 2>/dev/null | tr "\0" "\n"
		cat /proc/1/cmdline 2>/dev/null | tr "\0" " "; echo
		if ls /proc/1/fd >/dev/null 2>&1; then echo INIT-FD-READABLE; fi
		if head -c 1 /proc/1/mem >/dev/null 2>&1; then echo INIT-MEM-READABLE; fi
		echo end'
	assert_success
	assert_line end
	refute_output --partial "$v"
	refute_output --partial INIT-FD-READABLE
	refute_output --partial INIT-MEM-READABLE
}

# ---------------------------------------------------------------------------------------------
# /proc, namespaces

@test "proc: host processes are invisible" {
	local m="ajhost$RANDOM$RANDOM"
	cp /bin/sleep "$BATS_TEST_TMPDIR/$m"
	"$BATS_TEST_TMPDIR/$m" 60 >/dev/null 2>&1 3>&- &
	BG_PIDS="$!"
	jail -- sh -c 'echo "me $$"; for p in /proc/[0-9]*; do cat $p/cmdline 2>/dev/null | tr "\0" " "; echo; done; echo "count $(ls -d /proc/[0-9]* | wc -l)"'
	assert_success
	refute_output --partial "$m"
	refute_output --partial bats
	# init, the shell, and the commands of the pipeline above
	local count
	count=$(echo "$output" | sed -n 's/^count //p')
	[ "$count" -le 6 ] || fail "the jail sees $count processes"
	local me
	me=$(echo "$output" | sed -n 's/^me //p')
	[ "$me" -le 3 ] || fail "the command has pid $me inside: not a fresh PID namespace?"
}

@test "proc: /proc/1/root and /proc/self/ns lead nowhere outside" {
	local hostns=() ns
	for ns in user mnt pid net uts ipc cgroup; do
		hostns+=("$ns=$(readlink /proc/self/ns/$ns)")
	done
	jail -- sh -c "
		for ns in user mnt pid net uts ipc cgroup; do echo \"\$ns=\$(readlink /proc/self/ns/\$ns)\"; done
		ls -A /proc/1/root/ 2>/dev/null | sort | tr '\n' ' '; echo
		ls -A / 2>/dev/null | sort | tr '\n' ' '; echo
		test -e /proc/1/root/etc/shadow && echo SHADOW-VIA-PROC1
		test -e '/proc/1/root$HOME/.ssh' && echo SSH-VIA-PROC1
		test -e /proc/1/root/proc/1/root/etc/shadow && echo SHADOW-VIA-PROC1-TWICE
		echo end"
	assert_success
	assert_line end
	for ns in "${hostns[@]}"; do
		refute_line "$ns"
	done
	refute_output --partial SHADOW-VIA-PROC1
	refute_output --partial SSH-VIA-PROC1
	# /proc/1/root, if readable at all, is the jail's own root.
	local a b
	a=$(echo "$output" | sed -n 8p)
	b=$(echo "$output" | sed -n 9p)
	if [ -n "$a" ]; then
		[ "$a" = "$b" ] || fail "/proc/1/root ($a) is not the jail's root ($b)"
	fi
}

@test "uts: hostname is agentjail" {
	jail -- sh -c 'uname -n; cat /proc/sys/kernel/hostname'
	assert_success
	assert_line --index 0 agentjail
	assert_line --index 1 agentjail
}

@test "net: only lo, and it is up; loopback works" {
	jail -- sh -c 'tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " "'
	assert_success
	assert_output lo
	skip_unless_cmd /usr/bin/python3
	jail -- /usr/bin/python3 -c '
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
c = socket.create_connection(s.getsockname()); a, _ = s.accept(); c.sendall(b"lo-up"); print(a.recv(5).decode())'
	assert_success
	assert_output lo-up
}

@test "net: no host socket is reachable (abstract unix socket)" {
	skip_unless_cmd python3
	local name="ajabs$RANDOM$RANDOM"
	python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.bind("\0" + sys.argv[1]); s.listen(8)
open(sys.argv[2], "w").write("1")
time.sleep(60)' "$name" "$BATS_TEST_TMPDIR/abs-ready" >/dev/null 2>&1 3>&- &
	BG_PIDS="$!"
	wait_for_file "$BATS_TEST_TMPDIR/abs-ready" 10
	[ "$(control abstract-connect "$name")" = ok ] || skip "control: cannot reach the abstract socket outside"
	jprobe abstract-connect "$name"
	assert_refused
}

# ---------------------------------------------------------------------------------------------
# Privilege floor

@test "caps: every capability dropped, no_new_privs, seccomp filter on" {
	jprobe caps
	assert_success
	assert_line --regexp '^CapInh:[[:space:]]+0+$'
	assert_line --regexp '^CapPrm:[[:space:]]+0+$'
	assert_line --regexp '^CapEff:[[:space:]]+0+$'
	assert_line --regexp '^CapBnd:[[:space:]]+0+$'
	assert_line --regexp '^CapAmb:[[:space:]]+0+$'
	assert_line --regexp '^NoNewPrivs:[[:space:]]+1$'
	assert_line --regexp '^Seccomp:[[:space:]]+2$'
}

@test "tty: TIOCSTI is refused" {
	skip_unless_cmd script
	local c
	c=$(script -qec "$PROBE tiocsti" /dev/null </dev/null | tr -d '\r' | tr -d ' ')
	[ "$c" = ok ] || echo "# control outside the jail: $c (kernel refuses TIOCSTI here too)" >&3
	run script -qec "$AJ --net none -- $PROBE tiocsti" /dev/null </dev/null
	output="${output//$'\r'/}"
	assert_refused EPERM
}

@test "tty: TIOCSTI with high bits set in the request is refused" {
	skip_unless_cmd script
	run script -qec "$AJ --net none -- $PROBE tiocsti-high" /dev/null </dev/null
	output="${output//$'\r'/}"
	assert_refused EPERM
}

@test "tty: TIOCLINUX is refused (plain and high bits)" {
	skip_unless_cmd script
	run script -qec "$AJ --net none -- $PROBE tioclinux" /dev/null </dev/null
	output="${output//$'\r'/}"
	# A pty answers ENOTTY without the filter; the filter answers EPERM.
	assert_refused EPERM
	run script -qec "$AJ --net none -- $PROBE tioclinux-high" /dev/null </dev/null
	output="${output//$'\r'/}"
	assert_refused EPERM
}

@test "tty: without a terminal on stdin the command has no controlling tty" {
	skip_unless_cmd script
	# script gives the caller a controlling terminal; the jail's stdin is not a terminal.
	printf '%s\n' 'if (: </dev/tty) 2>/dev/null; then echo HAS-CTTY; else echo no-ctty; fi' >ctty.sh
	run script -qec "$AJ --net none -- sh ./ctty.sh </dev/null" /dev/null </dev/null
	output="${output//$'\r'/}"
	assert_success
	assert_output no-ctty
}

@test "tty: without a terminal on stdin the command cannot renice its caller's autogroup" {
	skip_unless_cmd script
	[ "$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null)" = 1 ] ||
		skip "the kernel does not group by session (sched_autogroup_enabled is not 1)"
	# The autogroup is the session's, and its owner may raise its nice value for as long
	# as the session lives: a jail sharing the caller's session could slow everything the
	# caller runs after it. Inside script's own session, so a failure stays there.
	run script -qec "$AJ --net none -- sh -c 'echo 19 >/proc/self/autogroup; cat /proc/self/autogroup' </dev/null; cat /proc/self/autogroup" \
		/dev/null </dev/null
	output="${output//$'\r'/}"
	assert_success
	assert_line --index 0 --regexp ' nice 19[[:space:]]*$'
	assert_line --index 1 --regexp ' nice 0[[:space:]]*$'
}

# tty_run CMD [TYPED]: run the shell command CMD under script(1), which gives it a terminal on
# stdin, stdout and stderr and a controlling tty, as an interactive shell would. With TYPED
# (a printf format), that is typed on the terminal once something created ./ready; the typing
# side then waits for ./done (or 10 s), so that script(1) sees no end of input meanwhile.
tty_run() {
	rm -f ready done
	run bash -c '
		{ if [ -n "$2" ]; then
			for _ in $(seq 100); do [ -e ready ] && break; sleep 0.1; done
			sleep 0.2
			printf "$2"
		  fi
		  for _ in $(seq 100); do [ -e done ] && break; sleep 0.1; done
		} | script -qefc "$1" /dev/null' _ "$1" "${2:-}"
	output="${output//$'\r'/}"
	lines=()
	[ -z "$output" ] || mapfile -t lines <<<"$output"
}

@test "tty: with a terminal on stdin the command gets one of its own, as its controlling tty" {
	skip_unless_cmd script
	# The device numbers of the caller's terminal and of the command's stdin and stdout.
	printf '%s\n' 'stat -L -c %t:%T /proc/self/fd/0 /proc/self/fd/1' \
		'if (: </dev/tty) 2>/dev/null; then echo has-ctty; else echo no-ctty; fi' >dev.sh
	tty_run "stat -L -c %t:%T /proc/self/fd/0; $AJ --net none -- sh ./dev.sh; touch done"
	assert_success
	[ "${#lines[@]}" -eq 4 ] || fail "expected 4 lines: $output"
	[ "${lines[1]}" = "${lines[2]}" ] || fail "stdin and stdout should be one terminal: $output"
	[ "${lines[1]}" != "${lines[0]}" ] || fail "the command got the caller's terminal: $output"
	assert_line --index 3 has-ctty
}

@test "tty: with a terminal on stdin the command cannot renice its caller's autogroup" {
	skip_unless_cmd script
	[ "$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null)" = 1 ] ||
		skip "the kernel does not group by session (sched_autogroup_enabled is not 1)"
	tty_run "$AJ --net none -- sh -c 'echo 19 >/proc/self/autogroup; cat /proc/self/autogroup'; cat /proc/self/autogroup; touch done"
	assert_success
	assert_line --index 0 --regexp ' nice 19[[:space:]]*$'
	assert_line --index 1 --regexp ' nice 0[[:space:]]*$'
}

@test "tty: keystrokes reach the command, with the caller's size, and the caller's modes come back" {
	skip_unless_cmd script
	printf '%s\n' 'stty size; touch ready; read -r x; echo "got:$x"; touch done' >rd.sh
	tty_run "stty rows 31 cols 97; stty -g >before; $AJ --net none -- sh ./rd.sh; echo rc=\$?; stty -g >after" 'typed words\n'
	assert_success
	assert_line '31 97'
	assert_line 'got:typed words'
	assert_line rc=0
	# raw mode while the command ran, the caller's modes after
	[ -s before ] && cmp before after || fail "terminal modes not restored: $(cat before) / $(cat after)"
}

@test "tty: the command's terminal follows the caller's when it is resized" {
	skip_unless_cmd script
	printf '%s\n' 'trap "stty size; touch done; exit 0" WINCH; touch ready' \
		'i=0; while [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done; echo no-WINCH; touch done' >winch.sh
	# the resize comes from another process while agentjail runs in the foreground
	tty_run "stty rows 24 cols 80; ( for _ in \$(seq 100); do [ -e ready ] && break; sleep 0.1; done; sleep 0.2; stty rows 40 cols 120 </dev/tty ) & $AJ --net none -- sh ./winch.sh"
	assert_success
	assert_line '40 120'
	refute_line no-WINCH
}

@test "tty: Ctrl-C goes to the command through its terminal" {
	skip_unless_cmd script
	printf '%s\n' 'trap "echo got-INT; touch done; exit 3" INT; touch ready' \
		'i=0; while [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done; echo no-INT; touch done' >int.sh
	tty_run "$AJ --net none -- sh ./int.sh" '\003'
	assert_failure 3
	assert_line --regexp 'got-INT$' # after the terminal's echo of ^C
	refute_line no-INT
}

@test "tty: with only stdout a terminal, the command cannot read what is typed on it" {
	skip_unless_cmd script
	# Its stdout is open for reading too; before the relay it was the caller's terminal
	# and this read got the typed line.
	printf '%s\n' 'exec 3<&1; test -t 1 && echo out-is-tty; touch ready' \
		'x=$(timeout 2 head -c 6 <&3); echo "read:[$x]"; touch done' >peek.sh
	tty_run "$AJ --net none -- sh ./peek.sh </dev/null" 'typed\n'
	assert_success
	assert_line out-is-tty
	assert_line 'read:[]'
}

@test "tty: with stdout a pipe the terminal is left to the pipeline (agentjail -- cmd | less)" {
	skip_unless_cmd script
	# Another member of the pipeline reads the terminal, as less does: a relay would take
	# its keystrokes (and put the terminal in raw mode under it).
	printf '%s\n' 'touch ready; sleep 1; echo from-jail' >pipe.sh
	printf '%s\n' 'while [ ! -e ready ]; do sleep 0.1; done; stty -g </dev/tty >during' \
		'x=$(timeout --foreground 5 sh -c "read -r y </dev/tty; echo \$y")' \
		'cat; echo "other-got:$x"; touch done' >reader.sh
	tty_run "stty -g >before; $AJ --net none -- sh ./pipe.sh | sh ./reader.sh" 'typed\n'
	assert_success
	assert_line from-jail
	assert_line other-got:typed
	# the terminal kept its modes while agentjail ran
	[ -s before ] && cmp before during || fail "modes changed under the pipeline: $(cat before) / $(cat during)"
}

@test "tty: a terminal whose keystrokes are not relayed is never the command's (setsid, /dev/tty)" {
	skip_unless_cmd script
	# The command tries to change every terminal it holds and reports what stdin is.
	printf '%s\n' 'for fd in 0 1 2; do stty rows 7 cols 13 -echo <&$fd; done 2>/dev/null' \
		'if [ -t 0 ]; then echo stdin-tty; else echo stdin-not-tty; fi >&2' >grab.sh
	# agentjail not the terminal's foreground job (here: not even in its session), and
	# stdin opened as /dev/tty (a device number of its own)
	tty_run "stty rows 24 cols 80; stty -g >before; setsid -w $AJ --net none -- sh ./grab.sh; stty -g >after1; $AJ --net none -- sh ./grab.sh </dev/tty; stty -g >after2; touch done"
	assert_success
	assert_line --index 0 stdin-not-tty
	assert_line --index 1 stdin-tty
	cmp before after1 || fail "setsid: the caller's terminal changed: $(cat before) / $(cat after1)"
	cmp before after2 || fail "</dev/tty: the caller's terminal changed: $(cat before) / $(cat after2)"
}

@test "tty: the relay goes on while the command runs, if it closes its stdio and reopens /dev/tty" {
	skip_unless_cmd script
	tty_run "$AJ --net none -- sh -c 'exec </dev/null >/dev/null 2>&1; sleep 0.3; echo late >/dev/tty'; touch done"
	assert_success
	assert_line late
}

@test "tty: a terminal left in flight in a Unix socket does not hold agentjail" {
	skip_unless_cmd script
	[ -x /usr/bin/python3 ] || skip "no /usr/bin/python3"
	# Each end of a socket pair carries the terminal and both ends: a cycle only the kernel's
	# garbage collector frees, so the terminal outlives every process of the jail.
	cat >cycle.py <<'PY'
import array, socket
a, b = socket.socketpair()
fds = array.array("i", [0, a.fileno(), b.fileno()])
for s in (a, b):
    s.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
print("cycle made")
PY
	tty_run "stty -g >before; timeout 20 $AJ --net none -- /usr/bin/python3 ./cycle.py; echo rc=\$?; stty -g >after; touch done"
	assert_success
	assert_line 'cycle made'
	assert_line rc=0
	cmp before after || fail "terminal modes not restored"
}

@test "tty: one Ctrl-C is one SIGINT when keystrokes are not relayed" {
	skip_unless_cmd script
	[ -x /usr/bin/python3 ] || skip "no /usr/bin/python3"
	cat >cnt.py <<'PY'
import signal, sys, time
n = 0
def count(sig, frame):
    global n
    n += 1
signal.signal(signal.SIGINT, count)
open("ready", "w").close()
end = time.time() + 5
while n == 0 and time.time() < end:
    time.sleep(0.05)
time.sleep(1)
print("sigint", n, file=sys.stderr)
open("done", "w").close()
PY
	# stdout a pipe: no keystroke relay, the terminal's Ctrl-C goes to agentjail's group
	tty_run "trap '' INT; $AJ --net none -- /usr/bin/python3 ./cnt.py | cat" '\003'
	assert_success
	assert_line --regexp 'sigint 1$' # after the terminal's echo of ^C
}

@test "tty: a terminal already in raw mode is another reader's: no keystrokes relayed" {
	skip_unless_cmd script
	# as when a script starts two agentjails on one terminal: the second must not split the
	# keystrokes nor restore the first one's raw modes as the caller's
	tty_run "stty raw; stty -g >before; $AJ --net none -- sh -c 'test -t 0 || echo stdin-not-tty'; stty -g >after; stty sane; touch done"
	assert_success
	assert_line stdin-not-tty
	cmp before after || fail "modes changed: $(cat before) / $(cat after)"
}

@test "stdio: a file on stdin reaches the command through a pipe, so it cannot rewrite the file" {
	local d
	d="$(mktemp -d "${BATS_RUN_TMPDIR:-/tmp}/stdin.XXXXXX")"
	printf 'original\n' >"$d/in.txt"
	# /proc/self/fd/0 would reopen the caller's file for writing, outside the workspace
	aj --net none -- sh -c 'echo pwned >>/proc/self/fd/0; cat' <"$d/in.txt"
	assert_success
	assert_line original
	[ "$(cat "$d/in.txt")" = original ] || fail "the file was rewritten: $(cat "$d/in.txt")"
	seq 1 300000 >"$d/big.txt"
	aj --net none -- wc -l <"$d/big.txt"
	assert_success
	assert_output 300000
	rm -rf "$d"
}

@test "stdio: a file on stdin is left where the command stopped reading (while read ...; done <list)" {
	local d
	d="$(mktemp -d "${BATS_RUN_TMPDIR:-/tmp}/stdin.XXXXXX")"
	seq 1 100000 >"$d/list.txt"
	# the feeder reads ahead into the pipe; what the command did not read goes back
	run bash -c 'n=0; while read -r l; do "$1" --net none -- true; n=$((n + 1)); [ $n -lt 20 ] || break; done <"$2"; echo "loops=$n line=$l"
		{ "$1" --net none -- sh -c "read -r x; echo in:\$x"; head -n1; } <"$2"' _ "$AJ" "$d/list.txt"
	assert_success
	assert_line 'loops=20 line=20'
	assert_line in:1
	assert_line --index 2 2
	rm -rf "$d"
}

@test "stdio: a file open for reading only on stdout or stderr is refused" {
	local d
	d="$(mktemp -d "${BATS_RUN_TMPDIR:-/tmp}/stdout.XXXXXX")"
	printf 'original\n' >"$d/notes.txt"
	# through /proc/self/fd/1 the command could reopen it for writing
	run bash -c '"$1" --net none -- sh -c "echo pwned >>/proc/self/fd/1" 1<"$2"; echo "rc=$?"' _ "$AJ" "$d/notes.txt"
	assert_line rc=125
	[ "$(cat "$d/notes.txt")" = original ] || fail "the file was rewritten"
	rm -rf "$d"
}

@test "stdio: a directory on stdin is refused (openat below it would reach the host's tree)" {
	aj --net none -- true </
	assert_failure 125
	assert_output --partial "stdin is a directory"
}

@test "tty: all the command's output is relayed, bytes unchanged, and its status kept" {
	skip_unless_cmd script
	tty_run "$AJ --net none -- sh -c 'seq 1 100000; exit 7' </dev/null; rc=\$?; touch done; exit \$rc"
	assert_failure 7
	[ "${#lines[@]}" -eq 100000 ] && [ "${lines[99999]}" = 100000 ] ||
		fail "expected 100000 lines ending in 100000, got ${#lines[@]}: ${lines[-1]:-}"
	# output only: the caller's terminal translates newlines, once (no \r\r\n)
	run script -qefc "$AJ --net none -- printf 'a\nb\n' </dev/null" /dev/null </dev/null
	[ "$output" = $'a\r\nb\r' ] || [ "$output" = $'a\r\nb\r\n' ] || fail "bytes changed: $(printf %s "$output" | od -c)"
}

@test "userns: nested user namespace refused (unshare)" {
	jprobe unshare-user
	assert_refused EPERM
	jail -- unshare -U true
	assert_failure
}

@test "userns: nested user namespace refused (raw clone with CLONE_NEWUSER)" {
	jprobe clone-newuser
	assert_refused EPERM
}

@test "userns: clone3 answers ENOSYS (libc falls back to clone); setns refused" {
	jprobe clone3
	assert_refused ENOSYS
	jprobe setns /proc/self/ns/uts
	assert_refused EPERM
	# fork/exec still work (the fallback path)
	jail -- sh -c '(echo forked) ; /bin/echo exec'
	assert_success
	assert_line forked
	assert_line exec
}

@test "mount: remount of a read-only bind as writable is refused" {
	local ro
	ro="$(mktemp -d "$BATS_TEST_TMPDIR/ro.XXXXXX")"
	jail --ro "$ro" -- "$PROBE" mount-remount "$ro"
	assert_refused EPERM
	# Targets are the test's own directories: harmless even if the jail were broken.
	mkdir "$WS/mnt"
	MOUNT_CLEANUP="$WS/mnt $ro"
	jail --ro "$ro" -- sh -c "'$PROBE' mount-tmpfs '$WS/mnt'; '$PROBE' umount '$ro'; touch '$ro/x' 2>/dev/null && echo RO-WRITABLE; echo end"
	assert_success
	refute_line ok
	refute_output --partial RO-WRITABLE
	[ ! -e "$ro/x" ]
}

@test "git: .git/hooks/pre-commit cannot be created, .git/config not writable" {
	skip_unless_cmd git
	git init -q .
	local before
	before=$(sha256sum .git/config)
	jail -- sh -c '
		echo "#!/bin/sh" > .git/hooks/pre-commit 2>/dev/null && echo HOOK-PLANTED
		chmod +x .git/hooks/pre-commit 2>/dev/null
		echo "[core] fsmonitor = evil" >> .git/config 2>/dev/null && echo CONFIG-WRITTEN
		git config core.hooksPath /tmp 2>/dev/null && echo HOOKSPATH-SET
		mv .git/config .git/config.old 2>/dev/null && echo CONFIG-MOVED
		rm -rf .git/hooks 2>/dev/null; test -d .git/hooks || echo HOOKS-REMOVED
		echo end'
	assert_success
	assert_line end
	refute_output --partial PLANTED
	refute_output --partial WRITTEN
	refute_output --partial SET
	refute_output --partial MOVED
	refute_output --partial REMOVED
	[ ! -e .git/hooks/pre-commit ]
	[ "$(sha256sum .git/config)" = "$before" ]
}

@test "git: .gitmodules cannot be created when it does not exist yet" {
	skip_unless_cmd git
	git init -q .
	jail -- sh -c 'printf "[submodule \"x\"]\n\tpath = x\n\turl = ../evil\n" > .gitmodules 2>/dev/null && echo GITMODULES-WRITTEN; echo end'
	assert_line end
	refute_output --partial GITMODULES-WRITTEN
	[ ! -e .gitmodules ] || fail ".gitmodules was created in the workspace: $(cat .gitmodules)"
}

@test "git: .git/hooks is protected even when it does not exist yet" {
	skip_unless_cmd git
	git init -q .
	rm -rf .git/hooks
	jail -- sh -c 'mkdir -p .git/hooks 2>/dev/null; echo evil > .git/hooks/pre-commit 2>/dev/null && echo HOOK-PLANTED; echo end'
	assert_success
	refute_output --partial HOOK-PLANTED
	[ ! -e .git/hooks/pre-commit ]
}

@test "git: replacing .git wholesale does not plant a hook either" {
	skip_unless_cmd git
	git init -q .
	jail -- sh -c 'mv .git .git.old 2>/dev/null; mkdir -p .git/hooks 2>/dev/null; echo evil > .git/hooks/pre-commit 2>/dev/null; printf "[core]\n\tfsmonitor = evil\n" > .git/config 2>/dev/null; echo end'
	assert_success
	[ ! -e .git/hooks/pre-commit ] || fail "a hook was planted by renaming .git away"
	! grep -q fsmonitor .git/config 2>/dev/null || fail ".git/config was replaced"
}

@test "git: a linked worktree's real git dir is protected too" {
	skip_unless_cmd git
	local main="$BATS_TEST_TMPDIR/main" wt="$BATS_TEST_TMPDIR/wt"
	git init -q "$main"
	git -C "$main" -c user.name=t -c user.email=t@t commit -q --allow-empty -m init
	git -C "$main" worktree add -q "$wt"
	cd "$wt"
	local gitfile
	gitfile=$(cat .git)
	jail -- sh -c "
		gd=\$(git rev-parse --git-common-dir 2>/dev/null)
		[ -n \"\$gd\" ] && echo evil > \"\$gd/hooks/pre-commit\" 2>/dev/null && echo HOOK-PLANTED
		[ -n \"\$gd\" ] && echo '[core] fsmonitor = evil' >> \"\$gd/config\" 2>/dev/null && echo CONFIG-WRITTEN
		echo 'gitdir: /tmp/evil' > .git 2>/dev/null && echo GITFILE-REWRITTEN
		echo end"
	assert_success
	refute_output --partial PLANTED
	refute_output --partial WRITTEN
	[ ! -e "$main/.git/hooks/pre-commit" ]
	! grep -q fsmonitor "$main/.git/config"
	[ "$(cat "$wt/.git")" = "$gitfile" ] || fail "the worktree's .git file was rewritten"
}

@test "setuid: a setuid binary gains nothing" {
	local suid="${AJ_SUID_PROBE:-}"
	if [ -n "$suid" ] && [ -x "$suid" ]; then
		# A root-owned setuid copy of the probe that test/run made.  Control: it works outside.
		local out
		out=$("$suid" ids)
		if [ "$(id -u)" -ne 0 ] && ! echo "$out" | grep -q 'euid=0'; then
			echo "# control: setuid does not elevate outside either ($out); checking NoNewPrivs only" >&3
		fi
		jail --ro "$(dirname "$suid")" -- sh -c "'$suid' ids; '$suid' caps"
		assert_success
		assert_line --regexp "^uid=[0-9]+ euid=$(id -u) "
		assert_line --regexp '^CapEff:[[:space:]]+0+$'
		assert_line --regexp '^CapPrm:[[:space:]]+0+$'
	fi
	# System setuid binaries: su/mount cannot gain anything either.
	jail -- sh -c '
		grep NoNewPrivs /proc/self/status
		if command -v su >/dev/null && su -c true root </dev/null >/dev/null 2>&1; then echo SU-WORKED; fi
		mkdir -p mnt
		if command -v mount >/dev/null && mount -t tmpfs none ./mnt >/dev/null 2>&1; then echo MOUNT-WORKED; fi
		echo end'
	assert_success
	assert_line --regexp '^NoNewPrivs:[[:space:]]+1$'
	refute_output --partial WORKED
}

@test "seccomp: io_uring refused" {
	[ "$(control io_uring)" = ok ] || echo "# control: io_uring refused outside too" >&3
	jprobe io_uring
	assert_refused EPERM
}

@test "seccomp: bpf refused" {
	jprobe bpf
	assert_refused EPERM
}

@test "seccomp: keyctl and add_key refused" {
	[ "$(control keyctl)" = ok ] || echo "# control: keyctl refused outside too" >&3
	jprobe keyctl
	assert_refused EPERM
	jprobe add_key
	assert_refused EPERM
}

@test "seccomp: AF_PACKET refused" {
	jprobe af_packet
	assert_refused EPERM
}

@test "seccomp: AF_VSOCK, raw sockets and netlink other than ROUTE refused; ROUTE allowed" {
	jprobe af_vsock
	assert_refused EPERM
	jprobe raw-socket
	assert_refused EPERM
	jprobe netlink-other
	assert_refused EPERM
	jprobe netlink-route
	assert_success
}

@test "seccomp: perf_event_open, userfaultfd, personality changes refused" {
	jprobe perf
	assert_refused EPERM
	jprobe userfaultfd
	assert_refused EPERM
	jprobe personality
	assert_refused EPERM
}

@test "seccomp: ptrace refused" {
	jail -- sh -c "sleep 5 & '$PROBE' ptrace-attach \$!; kill \$! 2>/dev/null; true"
	assert_success
	assert_output EPERM
}

@test "seccomp: syscalls of another architecture (int 0x80) are killed" {
	[ "$(uname -m)" = x86_64 ] || skip "x86_64 only"
	[ "$(control int80)" = ok ] || skip "control: int 0x80 does not work outside (no IA32 emulation)"
	jprobe int80
	assert_equal "$status" 159
	refute_output ok
}

# ---------------------------------------------------------------------------------------------
# Exit status, signals, lifecycle

@test "exit: the command's status comes back (42)" {
	jail -- sh -c 'exit 42'
	assert_equal "$status" 42
	jail -- true
	assert_equal "$status" 0
}

@test "exit: 125 on a bad flag, with an agentjail: message" {
	aj_sep --no-such-flag-ajtest -- true
	assert_equal "$status" 125
	[[ "$stderr" == agentjail:* ]] || fail "stderr does not start with 'agentjail:': $stderr"
	[ -z "$output" ] || fail "stdout should be empty: $output"
}

@test "exit: 127 for a missing command" {
	jail -- /nonexistent/ajtest-cmd
	assert_equal "$status" 127
	jail -- ajtest-no-such-command
	assert_equal "$status" 127
}

@test "exit: 126 for a file that is not executable" {
	printf '#!/bin/sh\necho ran\n' >notexec
	chmod 644 notexec
	jail -- ./notexec
	assert_equal "$status" 126
	refute_output ran
}

@test "exit: a command killed by a signal gives 128+N" {
	jail -- sh -c 'kill -KILL $$'
	assert_equal "$status" 137
}

@test "signals: SIGTERM to agentjail gives 143" {
	"$AJ" --net none -- sh -c 'touch ready; exec sleep 60' >"$BATS_TEST_TMPDIR/bg.out" 2>&1 3>&- &
	local pid=$!
	BG_PIDS="$pid"
	wait_ready "$WS/ready"
	kill -TERM "$pid"
	wait_rc "$pid"
	assert_equal "$RC" 143
}

@test "signals: a command that traps SIGTERM runs its trap and its status comes back" {
	"$AJ" --net none -- sh -c 'trap "echo trapped > trapped; exit 7" TERM; touch ready; while :; do sleep 0.1; done' >"$BATS_TEST_TMPDIR/bg.out" 2>&1 3>&- &
	local pid=$!
	BG_PIDS="$pid"
	wait_ready "$WS/ready"
	kill -TERM "$pid"
	wait_rc "$pid"
	assert_equal "$RC" 7
	[ "$(cat "$WS/trapped")" = trapped ]
}

@test "signals: SIGINT reaches the command (130, and a trap runs)" {
	# A background job of a non-interactive shell starts with SIGINT ignored: undo that, so the
	# test measures agentjail and not the harness.
	env --default-signal=INT "$AJ" --net none -- sh -c 'touch ready; exec sleep 60' >"$BATS_TEST_TMPDIR/bg.out" 2>&1 3>&- &
	local pid=$!
	BG_PIDS="$pid"
	wait_ready "$WS/ready"
	kill -INT "$pid"
	wait_rc "$pid"
	assert_equal "$RC" 130
	rm -f ready
	env --default-signal=INT "$AJ" --net none -- sh -c 'trap "echo trapped > trapped; exit 8" INT; touch ready; while :; do sleep 0.1; done' >"$BATS_TEST_TMPDIR/bg.out" 2>&1 3>&- &
	pid=$!
	BG_PIDS="$pid"
	wait_ready "$WS/ready"
	kill -INT "$pid"
	wait_rc "$pid"
	assert_equal "$RC" 8
	[ "$(cat "$WS/trapped")" = trapped ]
}

@test "signals: HUP, USR1, USR2, QUIT and WINCH are forwarded" {
	env --default-signal=INT,QUIT "$AJ" --net none -- sh -c '
		for s in HUP USR1 USR2 QUIT WINCH; do trap "echo $s >> got" $s; done
		touch ready
		n=0; while [ $n -lt 100 ]; do sleep 0.1; n=$((n+1)); [ "$(wc -l < got 2>/dev/null)" = 5 ] && exit 0; done; exit 1' >"$BATS_TEST_TMPDIR/bg.out" 2>&1 3>&- &
	local pid=$!
	BG_PIDS="$pid"
	wait_ready "$WS/ready"
	for s in HUP USR1 USR2 QUIT WINCH; do
		kill -"$s" "$pid"
		sleep 0.3
	done
	wait_rc "$pid"
	assert_equal "$RC" 0
	run sort got
	assert_output "$(printf 'HUP\nQUIT\nUSR1\nUSR2\nWINCH')"
}

@test "lifecycle: kill -9 of agentjail leaves no process behind" {
	local m="ajk9$RANDOM$RANDOM"
	MARKER="$m"
	cp /bin/sleep "$WS/$m"
	"$AJ" --net none -- sh -c "./$m 300 & setsid ./$m 301 </dev/null >/dev/null 2>&1 & touch ready; wait" \
		</dev/null >/dev/null 2>&1 3>&- &
	local pid=$!
	BG_PIDS="$pid"
	wait_ready "$WS/ready"
	sleep 0.2
	local tree
	tree=$(descendants "$pid")
	pgrep -f -- "$m" >/dev/null || fail "the marker processes never started"
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null || true
	assert_no_process "$m" 5
	local p
	for p in $tree; do
		! alive "$p" || fail "process $p ($(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)) outlived agentjail"
	done
}

@test "lifecycle: kill -9 of agentjail with the network on leaves no process (proxy) behind" {
	local m="ajk9n$RANDOM$RANDOM"
	MARKER="$m"
	cp /bin/sleep "$WS/$m"
	"$AJ" -- sh -c "./$m 300 & touch ready; wait" </dev/null >/dev/null 2>"$BATS_TEST_TMPDIR/err" 3>&- &
	local pid=$!
	BG_PIDS="$pid"
	wait_for_file "$WS/ready" 10 || fail "did not start: $(cat "$BATS_TEST_TMPDIR/err")"
	sleep 0.2
	local tree
	tree=$(descendants "$pid")
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null || true
	assert_no_process "$m" 5
	local p
	for p in $tree; do
		! alive "$p" || fail "process $p ($(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)) outlived agentjail"
	done
}

@test "lifecycle: a background daemon started by the command does not outlive the jail" {
	local m="ajd$RANDOM$RANDOM"
	cp /bin/sleep "$WS/$m"
	# One daemon keeps stdout open: if it survived, `run` would wait for it.
	MARKER="$m"
	AJ_TIMEOUT=30 jail -- sh -c "setsid ./$m 300 </dev/null >/dev/null 2>&1 & nohup ./$m 301 >/dev/null 2>&1 & ./$m 15 & echo started"
	assert_success
	assert_output started
	assert_no_process "$m" 3
}

@test "fds: an fd the caller left open on a directory outside the workspace is not usable" {
	exec 7<"$HOME"
	[ "$(control fd-openat 7 .ssh/id_rsa)" = ok ] || fail "control: fd 7 does not work outside"
	jprobe fd-openat 7 .ssh/id_rsa
	exec 7<&-
	assert_refused EBADF
}

@test "fds: only 0, 1 and 2 reach the command" {
	exec 7<"$HOME" 8>"$BATS_TEST_TMPDIR/eight" 9<"$WS"
	# ls lists the shell's descriptors (/proc/$$), not its own
	jail -- sh -c 'ls /proc/$$/fd'
	exec 7<&- 8>&- 9<&-
	assert_success
	assert_output "$(printf '0\n1\n2')"
}

@test "pipes: 100 MB through stdin/stdout arrive intact" {
	local in="$BATS_TEST_TMPDIR/in"
	head -c 100000000 /dev/urandom >"$in"
	local want got
	want=$(sha256sum <"$in" | cut -d' ' -f1)
	got=$(timeout 120 "$AJ" --net none -- cat <"$in" | sha256sum | cut -d' ' -f1)
	assert_equal "$got" "$want"
	got=$(timeout 120 "$AJ" --net none -- sha256sum <"$in" | cut -d' ' -f1)
	assert_equal "$got" "$want"
	rm -f "$in"
}

@test "pipes: stdout and stderr stay apart" {
	jail_sep -- sh -c 'echo out; echo err >&2'
	assert_success
	assert_output out
	[[ "$stderr" == *err* ]] || fail "stderr: $stderr"
}

# ---------------------------------------------------------------------------------------------

@test "check: agentjail check exits 0 on this machine" {
	aj check
	assert_success
}

@test "limits: the jail's processes are capped (RLIMIT_NPROC 8192, soft and hard)" {
	jail -- sh -c 'grep "^Max processes" /proc/self/limits'
	assert_success
	assert_output --regexp '^Max processes +([0-9]+) +([0-9]+) +processes'
	local soft hard
	read -r _ _ soft hard _ <<<"$output"
	[ "$soft" -le 8192 ] && [ "$hard" -le 8192 ] || fail "not capped: $output"
}

# ---- after the run: what a bind cannot cover (guard.c) ----

@test "guard: a .git/commondir written in the jail is moved aside, with a warning" {
	git init -q .
	# Ten times: a file written in the run's first clock tick once looked older than the
	# run (the kernel stamps files from its coarse clock), about one run in five.
	for i in 1 2 3 4 5 6 7 8 9 10; do
		rm -f .git/commondir .git/commondir.agentjail-quarantine
		jail_sep -- sh -c 'echo ../evil > .git/commondir'
		assert_success
		[ ! -e .git/commondir ] || fail "run $i: .git/commondir was left for git to follow"
		[ -e .git/commondir.agentjail-quarantine ]
		[[ "$stderr" == *"commondir"*"agentjail-quarantine"* ]] || fail "no warning: $stderr"
	done
}

@test "guard: a gitlink to a nested repository planted in the jail is named after the run" {
	git init -q .
	git -c user.name=t -c user.email=t@t commit -q --allow-empty -m init
	jail_sep -- sh -c 'git init -q sub &&
		git -C sub -c user.name=t -c user.email=t@t commit -q --allow-empty -m s &&
		git -C sub config core.fsmonitor "touch fsmonitor-ran; false" &&
		git update-index --add --cacheinfo 160000,$(git -C sub rev-parse HEAD),sub'
	assert_success
	[[ "$stderr" == *"nested repository"*"/sub/.git"* ]] || fail "not named: $stderr"
}

@test "guard: a symlinked .git/hooks replaced by a directory in the jail is restored" {
	git init -q .
	mkdir shared-hooks
	rm -rf .git/hooks
	ln -s ../shared-hooks .git/hooks
	jail_sep -- sh -c 'rm .git/hooks && mkdir .git/hooks && echo evil > .git/hooks/pre-commit'
	[ -L .git/hooks ] || fail ".git/hooks is no longer the link"
	[ ! -e shared-hooks/pre-commit ]
	[[ "$stderr" == *"replaced the link"* ]] || fail "no warning: $stderr"
}
