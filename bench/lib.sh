# shellcheck shell=bash
# Shared helpers for the benchmarks in bench/ (sourced, not run).
#
# Every benchmark runs as an unprivileged user, as agentjail is meant to be used: started as
# root, a script re-executes itself as $BENCH_USER (default ajtest, the test suite's user,
# created if missing) through setpriv.  Every server it starts listens on 127.0.0.1 only, on a
# free port, in a temporary directory, and is stopped on exit.  Every client run is bounded by
# a count and by `timeout`.

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH_DIR/.." && pwd)"
AJ="${AGENTJAIL:-$REPO/agentjail}"
case "$AJ" in /*) ;; *) AJ="$REPO/$AJ" ;; esac
TLSCLIENT="${BENCH_TLSCLIENT:-$REPO/build/bench/tlsclient}"
BENCH_USER="${BENCH_USER:-ajtest}"
PY=/usr/bin/python3
export LC_ALL=C

# Re-execute the calling script as $BENCH_USER when started as root.
bench_as_user() {
	[ "$(id -u)" -eq 0 ] || return 0
	if ! id "$BENCH_USER" >/dev/null 2>&1; then
		useradd --system --create-home --home-dir "/home/$BENCH_USER" --shell /bin/bash \
			"$BENCH_USER" || { echo "bench: cannot create user $BENCH_USER" >&2; exit 1; }
	fi
	local home
	home="$(getent passwd "$BENCH_USER" | cut -d: -f6)"
	exec setpriv --reuid="$BENCH_USER" --regid="$BENCH_USER" --init-groups --reset-env \
		env PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME="$home" \
		USER="$BENCH_USER" LOGNAME="$BENCH_USER" SHELL=/bin/bash LC_ALL=C \
		AGENTJAIL="$AJ" BENCH_TLSCLIENT="$TLSCLIENT" ${BENCH_QUICK:+BENCH_QUICK=1} \
		${BENCH_PROFILE:+BENCH_PROFILE=1} \
		bash "$0" "$@"
}

need() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || {
			echo "bench: $c is not installed (make bench-deps)" >&2
			exit 1
		}
	done
}

# A scratch directory, removed on exit with every server started through bg().
BENCH_PIDS=()
# The binary under test is copied there first: a rebuild of ./agentjail during the run (the
# tree is shared) must not change, or break, what is measured.
bench_tmp() {
	T="$(mktemp -d /tmp/ajbench.XXXXXX)"
	T="$(cd "$T" && pwd -P)"
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
	cp "$AJ" "$T/agentjail" || { echo "bench: cannot copy $AJ (run make first)" >&2; exit 1; }
	AJ="$T/agentjail"
}

bench_cleanup() {
	local p
	for p in "${BENCH_PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${BENCH_PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	[ -n "${T:-}" ] && [ -z "${BENCH_KEEP:-}" ] && rm -rf "$T"
}

# bg LOGFILE CMD...: start a server in the background, remember its pid in $!.
bg() {
	local log="$1"
	shift
	"$@" >"$log" 2>&1 </dev/null &
	BENCH_PIDS+=("$!")
}

free_port() {
	$PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_port PORT [SECONDS]: until something listens on 127.0.0.1:PORT.
wait_port() {
	local port="$1" n=$((${2:-10} * 20))
	while [ "$n" -gt 0 ]; do
		if $PY -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' \
			"$port" 2>/dev/null; then
			return 0
		fi
		sleep 0.05
		n=$((n - 1))
	done
	echo "bench: nothing listens on 127.0.0.1:$port" >&2
	return 1
}

# make_certs DIR NAME: DIR/ca.crt and a server certificate DIR/server.{crt,key} for NAME and
# 127.0.0.1, EC P-256 (as a real upstream would use).
make_certs() {
	local d="$1" name="$2"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/ca.key" \
		-out "$d/ca.crt" -days 2 -subj "/CN=agentjail bench CA" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
		2>/dev/null || return 1
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$d/server.key" -out "$d/server.csr" -subj "/CN=$name" 2>/dev/null || return 1
	printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:%s,IP:127.0.0.1\n' \
		"$name" >"$d/server.ext"
	openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
		-CAcreateserial -out "$d/server.crt" -days 2 -sha256 -extfile "$d/server.ext" \
		2>/dev/null
}

# nginx_conf_head WORKERS PIDFILE ERRORLOG TMPDIR: the start of an nginx.conf, up to inside
# its http block, that both nginx instances share: in the foreground, its files where given,
# no access log, connections kept alive as long as a benchmark runs.
nginx_conf_head() {
	cat <<EOF
worker_processes $1;
daemon off;
pid $2;
error_log $3 warn;
worker_rlimit_nofile 8192;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $4/body;
	proxy_temp_path $4/proxy;
	fastcgi_temp_path $4/fastcgi;
	uwsgi_temp_path $4/uwsgi;
	scgi_temp_path $4/scgi;
	keepalive_requests 1000000;
	keepalive_timeout 300s;
EOF
}

# start_nginx DIR PORT: nginx serving DIR/www over TLS on 127.0.0.1:PORT (certs in DIR).
# DIR/www/1g is a 1 GiB file (sparse: served from the page cache, no disk in the way),
# DIR/www/1k a 1 KiB one.
start_nginx() {
	local d="$1" port="$2"
	mkdir -p "$d/www" "$d/nginx-tmp"
	truncate -s 1G "$d/www/1g"
	head -c 1024 /dev/urandom >"$d/www/1k"
	{
		nginx_conf_head 1 "$d/nginx.pid" "$d/nginx-error.log" "$d/nginx-tmp"
		cat <<EOF
	default_type application/octet-stream;
	sendfile on;
	server {
		listen 127.0.0.1:$port ssl;
		server_name bench.test;
		ssl_certificate $d/server.crt;
		ssl_certificate_key $d/server.key;
		ssl_protocols TLSv1.2 TLSv1.3;
		# session cache and tickets as nginx ships them (tickets on): a client or proxy may
		# resume; bench/tlsclient and a fresh curl do not.
		root $d/www;
	}
}
EOF
	} >"$d/nginx.conf"
	bg "$d/nginx.out" nginx -p "$d" -e "$d/nginx-error.log" -c "$d/nginx.conf"
	NGINX_PID=$!
	wait_port "$port" 10
}

# start_nginx_proxy DIR PORT UPSTREAM_PORT: a second nginx, a TLS-terminating reverse proxy on
# 127.0.0.1:PORT for bench.test (certificates in DIR) in front of the nginx on UPSTREAM_PORT:
# its own verified, kept-alive TLS upstream, one header set, bodies streamed.  A reference for
# the intercepting proxy: the same two TLS endpoints and two loopback hops per request, in the
# best-known C event loop, without what agentjail adds (CONNECT, the jail, the secret checks).
start_nginx_proxy() {
	local c="$1" d="$1/nginx-proxy" port="$2" up="$3"
	mkdir -p "$d/tmp"
	{
		nginx_conf_head auto "$d/nginx.pid" "$d/error.log" "$d/tmp"
		cat <<EOF
	upstream origin {
		server 127.0.0.1:$up;
		keepalive 128;
		keepalive_requests 1000000;
	}
	server {
		listen 127.0.0.1:$port ssl;
		server_name bench.test;
		ssl_certificate $c/server.crt;
		ssl_certificate_key $c/server.key;
		ssl_protocols TLSv1.2 TLSv1.3;
		location / {
			proxy_pass https://origin;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header Host bench.test;
			proxy_set_header Authorization "Bearer bench-secret-value-0123456789";
			proxy_buffering off;
			proxy_ssl_server_name on;
			proxy_ssl_name bench.test;
			proxy_ssl_verify on;
			proxy_ssl_trusted_certificate $c/ca.crt;
			proxy_ssl_session_reuse on;
		}
	}
}
EOF
	} >"$d/nginx.conf"
	bg "$d/out" nginx -p "$d" -e "$d/error.log" -c "$d/nginx.conf"
	NGINX_PROXY_PID=$!
	wait_port "$port" 10
}

# start_squid DIR PORT / start_tinyproxy DIR PORT: plain CONNECT proxies on 127.0.0.1.
start_squid() {
	local d="$1/squid" port="$2"
	mkdir -p "$d"
	cat >"$d/squid.conf" <<EOF
http_port 127.0.0.1:$port
http_access allow all
cache deny all
cache_mem 8 MB
access_log none
cache_log $d/cache.log
cache_store_log none
pid_filename $d/squid.pid
coredump_dir $d
max_filedescriptors 8192
shutdown_lifetime 0 seconds
EOF
	bg "$d/out" squid -N -f "$d/squid.conf"
	wait_port "$port" 20
}

start_tinyproxy() {
	local d="$1/tinyproxy" port="$2"
	mkdir -p "$d"
	cat >"$d/tinyproxy.conf" <<EOF
Port $port
Listen 127.0.0.1
Timeout 600
MaxClients 1100
LogLevel Critical
LogFile "$d/tinyproxy.log"
PidFile "$d/tinyproxy.pid"
EOF
	bg "$d/out" tinyproxy -d -c "$d/tinyproxy.conf"
	wait_port "$port" 10
}

# median FILE: median of the numbers in FILE, one per line.
median() {
	sort -g "$1" | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# ratio A B: A / B with 2 decimals.
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "nan"; else printf "%.2f\n", a / b }'
}

# verdict OK-EXPR...: "met" or "MISSED", for the summary lines (awk expression on numbers).
verdict() {
	awk "BEGIN { print (($1) ? \"met\" : \"MISSED\") }"
}

# kv LINE KEY: the value of KEY=VALUE in a tlsclient output line.
kv() {
	printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

# rss_kib PID: VmRSS of a process, in KiB.
rss_kib() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null
}

# proxy_pid AJPID: the agentjail-proxy child of the agentjail monitor AJPID (waits up to 5 s).
proxy_pid() {
	local n=100 c
	while [ "$n" -gt 0 ]; do
		for c in $(cat "/proc/$1/task/$1/children" 2>/dev/null); do
			if [ "$(cat "/proc/$c/comm" 2>/dev/null)" = agentjail-proxy ]; then
				echo "$c"
				return 0
			fi
		done
		sleep 0.05
		n=$((n - 1))
	done
	return 1
}

# cpu_ticks PID...: user + system clock ticks of the processes PID..., summed.
cpu_ticks() {
	local p
	for p in "$@"; do
		cat "/proc/$p/stat"
	done | awk '{ t += $14 + $15 } END { print t + 0 }'
}

section() {
	printf '\n== %s ==\n' "$*"
}

# What else ran at the time: the figures of a loaded machine are not those of an idle one.
machine_line() {
	printf '%s; %s cores; kernel %s; load average %s; user %s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')" \
		"$(nproc)" "$(uname -r)" "$(cut -d' ' -f1-3 /proc/loadavg)" "$(id -un)"
}

# proxy_cpu KEY CLIENT AGENTJAIL-ARGV...: run the shell command CLIENT inside the jail started by
# AGENTJAIL-ARGV (in the workspace, $0 = $NP), and print "KEY ops=N proxy_ms_per_op=X
# nginx_ms_per_op=Y": the CPU time (user + system, from /proc/PID/stat) the proxy process and
# the nginx worker spent per operation while CLIENT ran.  N is the n= or requests= figure
# CLIENT (bench/tlsclient) printed.  CPU time is what a loaded machine distorts least.
proxy_cpu() {
	local key="$1" client="$2" s mon px nw a b na nb ops out n=0
	shift 2
	s="$(mktemp -d "$PWD/cpu.XXXXXX")"
	"$@" -- sh -c 'S="$1"; n=0
		while [ ! -e "$S/go" ] && [ "$n" -lt 1500 ]; do sleep 0.02; n=$((n + 1)); done
		eval "$2" >"$S/out" 2>&1; touch "$S/done"; n=0
		while [ ! -e "$S/fin" ] && [ "$n" -lt 1500 ]; do sleep 0.02; n=$((n + 1)); done' \
		"$NP" "$s" "$client" &
	mon=$!
	px="$(proxy_pid "$mon")" || { echo "bench: no proxy process" >&2; return 1; }
	nw="$(pgrep -P "$NGINX_PID" | head -n 1)"
	a="$(awk '{ print $14 + $15 }' "/proc/$px/stat")"
	na="$(awk '{ print $14 + $15 }' "/proc/$nw/stat")"
	touch "$s/go"
	while [ ! -e "$s/done" ] && [ "$n" -lt 6000 ]; do sleep 0.02; n=$((n + 1)); done
	b="$(awk '{ print $14 + $15 }' "/proc/$px/stat")"
	nb="$(awk '{ print $14 + $15 }' "/proc/$nw/stat")"
	touch "$s/fin"
	wait "$mon" || true
	out="$(cat "$s/out")"
	ops="$(kv "$out" requests)"
	[ -n "$ops" ] || ops="$(kv "$out" n)"
	[ -n "$ops" ] && [ "$ops" -gt 0 ] || { echo "bench: $key: $out" >&2; return 1; }
	awk -v k="$key" -v o="$ops" -v p=$((b - a)) -v q=$((nb - na)) -v hz="$(getconf CLK_TCK)" \
		'BEGIN { printf "%s ops=%d proxy_ms_per_op=%.4f nginx_ms_per_op=%.4f\n", k, o, p * 1000 / hz / o, q * 1000 / hz / o }'
}
