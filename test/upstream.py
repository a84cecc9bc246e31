#!/usr/bin/python3
"""Local HTTPS (and optionally plain HTTP) echo upstream for the agentjail test suites.

Python 3 standard library only, plus the openssl CLI to mint certificates at start.  Listens on
127.0.0.1 only.  Every request is answered with a JSON body describing it:

    {"method": ..., "path": ..., "version": ..., "headers": {name: value, ...},
     "header_list": [[name, value], ...], "body": "...", "body_len": N, "body_sha256": "...",
     "tls": true|false, "sni": "name or null", "client_port": N}

and the same object is appended as one line to --log.  Special paths:

    /bytes/N           N bytes of a deterministic pattern (large downloads), no JSON, not logged
                       with a body
    /status/CODE       the echo, with that status code
    files under --static DIR are served as files (GET/HEAD), e.g. a bare git repository for a
    dumb-http clone; a path into a subdirectory of DIR that does not exist gets 404.

Response headers: every --echo-header NAME=VALUE is added to every response; a request carrying
"X-Upstream-Echo-Headers: 1" also gets each of its own headers back as "X-Echo-<name>".

Certificates (in --dir): ca.crt / ca.key is the CA tests should trust (--upstream-ca); the server
certificate covers --names and 127.0.0.1, ::1.  With --untrusted the server certificate is signed by
a different CA (private/untrusted-ca.crt) that is not exported, so verification against ca.crt
fails.  The port file(s) are written only once the sockets listen.
"""

import argparse
import hashlib
import http.server
import json
import os
import shutil
import signal
import socketserver
import ssl
import subprocess
import sys
import threading
import urllib.parse

LOG_LOCK = threading.Lock()
ARGS = None
PATTERN = bytes(range(256)) * 256  # 64 KiB


def openssl(*argv):
    subprocess.run(["openssl", *argv], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


def make_ca(directory, stem, cn):
    key = os.path.join(directory, stem + ".key")
    crt = os.path.join(directory, stem + ".crt")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", crt, "-days", "30", "-subj", "/CN=" + cn,
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-addext", "subjectKeyIdentifier=hash")
    return crt, key


def make_leaf(directory, names, ca_crt, ca_key):
    key = os.path.join(directory, "server.key")
    csr = os.path.join(directory, "server.csr")
    crt = os.path.join(directory, "server.crt")
    ext = os.path.join(directory, "server.ext")
    san = ",".join(["DNS:" + n for n in names] + ["IP:127.0.0.1", "IP:::1"])
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectKeyIdentifier=hash\n"
                "authorityKeyIdentifier=keyid\n"
                "subjectAltName=" + san + "\n")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", csr, "-subj", "/CN=" + names[0])
    openssl("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
            "-out", crt, "-days", "30", "-sha256", "-extfile", ext)
    return crt, key


def make_certs(directory, names, untrusted):
    os.makedirs(directory, exist_ok=True)
    private = os.path.join(directory, "private")
    os.makedirs(private, exist_ok=True)
    ca_crt, ca_key = make_ca(directory, "ca", "agentjail test upstream CA")
    if untrusted:
        sign_crt, sign_key = make_ca(private, "untrusted-ca", "agentjail UNTRUSTED test CA")
    else:
        sign_crt, sign_key = ca_crt, ca_key
    return make_leaf(directory, names, sign_crt, sign_key)


def log_line(obj):
    if not ARGS.log:
        return
    line = json.dumps(obj, sort_keys=True) + "\n"
    with LOG_LOCK:
        with open(ARGS.log, "a") as f:
            f.write(line)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ajtest-upstream"
    sys_version = ""
    timeout = 60

    def version_string(self):
        return "ajtest-upstream"

    def log_message(self, fmt, *a):  # quiet: the JSON log is the record
        pass

    def read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            chunks = []
            while True:
                size_line = self.rfile.readline(1024)
                if not size_line:
                    break
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    # trailers up to the empty line
                    while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(8)
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length", "0") or "0")
        return self.rfile.read(n) if n > 0 else b""

    def extra_headers(self):
        for spec in ARGS.echo_header:
            name, _, value = spec.partition("=")
            self.send_header(name, value)
        if self.headers.get("X-Upstream-Echo-Headers", "") == "1":
            for name, value in self.headers.items():
                self.send_header("X-Echo-" + name, value)

    def try_static(self, path):
        if not ARGS.static or self.command not in ("GET", "HEAD"):
            return False
        root = os.path.realpath(ARGS.static)
        rel = urllib.parse.unquote(path).lstrip("/")
        full = os.path.realpath(os.path.join(root, rel))
        if full != root and not full.startswith(root + os.sep):
            return False
        first = rel.split("/", 1)[0]
        if os.path.isfile(full):
            size = os.path.getsize(full)
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.extra_headers()
            self.end_headers()
            if self.command == "GET":
                with open(full, "rb") as f:
                    shutil.copyfileobj(f, self.wfile, 256 * 1024)
            self.log_request_obj(b"", static=rel)
            return True
        if first and os.path.isdir(os.path.join(root, first)):
            self.send_simple(404, b"not found\n")
            self.log_request_obj(b"", static=rel, status=404)
            return True
        return False

    def send_simple(self, code, body, ctype="text/plain"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.extra_headers()
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def request_obj(self, body):
        conn = self.connection
        sni = getattr(conn, "ajtest_sni_name", None)
        return {
            "method": self.command,
            "path": self.path,
            "version": self.request_version,
            "headers": {k: v for k, v in self.headers.items()},
            "header_list": [[k, v] for k, v in self.headers.items()],
            "body": body.decode("utf-8", "replace"),
            "body_len": len(body),
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "tls": isinstance(conn, ssl.SSLSocket),
            "sni": sni,
            "client_port": self.client_address[1] if self.client_address else None,
        }

    def log_request_obj(self, body, **extra):
        obj = self.request_obj(body)
        obj.update(extra)
        log_line(obj)

    def send_bytes(self, n):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(n))
        self.extra_headers()
        self.end_headers()
        if self.command == "HEAD":
            return
        left = n
        while left > 0:
            chunk = PATTERN if left >= len(PATTERN) else PATTERN[:left]
            self.wfile.write(chunk)
            left -= len(chunk)

    def handle_any(self):
        body = self.read_body()
        path = urllib.parse.urlsplit(self.path).path or "/"
        if self.try_static(path):
            return
        if path.startswith("/bytes/"):
            try:
                n = int(path[len("/bytes/"):])
            except ValueError:
                n = -1
            if 0 <= n <= (1 << 40):
                self.log_request_obj(body, bytes=n)
                self.send_bytes(n)
                return
        code = 200
        if path.startswith("/status/"):
            try:
                code = int(path[len("/status/"):])
            except ValueError:
                code = 400
            if not 100 <= code <= 599:
                code = 400
        obj = self.request_obj(body)
        log_line(obj)
        self.send_simple(code, (json.dumps(obj, sort_keys=True) + "\n").encode(),
                         "application/json")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = handle_any


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def handle_error(self, request, client_address):
        pass  # resets, TLS failures from tests that expect them: not our concern


class TLSServer(Server):
    def __init__(self, addr, handler, ctx):
        self.ctx = ctx
        super().__init__(addr, handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        # Handshake in the worker thread (finish_request), not in the accept loop.
        return sock, addr

    def finish_request(self, request, client_address):
        request.settimeout(60)
        try:
            tls = self.ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            request.close()
            return
        self.RequestHandlerClass(tls, client_address, self)


def write_port_file(path, port):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.rename(tmp, path)


def main():
    global ARGS
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", required=True, help="directory for certificates (created)")
    p.add_argument("--names", default="example.test",
                   help="comma-separated DNS names in the server certificate")
    p.add_argument("--port", type=int, default=0, help="HTTPS port (0: pick a free one)")
    p.add_argument("--port-file", help="write the HTTPS port here once listening")
    p.add_argument("--http-port", type=int, help="also serve plain HTTP on this port (0: free)")
    p.add_argument("--http-port-file", help="write the plain HTTP port here once listening")
    p.add_argument("--log", help="append one JSON line per request here")
    p.add_argument("--untrusted", action="store_true",
                   help="sign the server certificate with a CA that is not exported")
    p.add_argument("--echo-header", action="append", default=[], metavar="NAME=VALUE",
                   help="add this header to every response (repeatable)")
    p.add_argument("--static", metavar="DIR", help="serve files under DIR")
    ARGS = p.parse_args()

    names = [n for n in ARGS.names.split(",") if n]
    crt, key = make_certs(ARGS.dir, names, ARGS.untrusted)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(crt, key)
    ctx.set_alpn_protocols(["http/1.1"])

    def on_sni(sslsock, name, _ctx):
        # Remember the SNI the client sent, for the echo (tests check what reached upstream).
        try:
            sslsock.ajtest_sni_name = name
        except AttributeError:
            pass
        return None

    ctx.sni_callback = on_sni

    servers = [TLSServer(("127.0.0.1", ARGS.port), Handler, ctx)]
    if ARGS.http_port is not None:
        servers.append(Server(("127.0.0.1", ARGS.http_port), Handler))
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    https_port = servers[0].server_address[1]
    print("https %d" % https_port, flush=True)
    if ARGS.port_file:
        write_port_file(ARGS.port_file, https_port)
    if len(servers) > 1:
        http_port = servers[1].server_address[1]
        print("http %d" % http_port, flush=True)
        if ARGS.http_port_file:
            write_port_file(ARGS.http_port_file, http_port)
    threading.Event().wait()


if __name__ == "__main__":
    main()
