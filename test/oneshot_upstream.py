#!/usr/bin/env python3
"""A TLS upstream that answers one request per connection ("conn N"), then ends it.

    oneshot_upstream.py CERTDIR PORTFILE MODE [SEEN]

CERTDIR holds server.crt and server.key (test/upstream.py's); the port goes to PORTFILE.
MODE:
  idle-close   close 0.1 s after the answer: a kept-alive upstream that timed the
               connection out between requests
  close-on-next  read the next request, then close without answering: the close that
               meets a request already sent
  stall-on-next  read the next request, then neither answer nor close for 30 s: a slow
               upstream, not a closed one
SEEN, when given, gets each request line read, with its connection ("... conn N", and
"dropped" for one read and left unanswered).
"""
import os
import socket
import ssl
import sys
import threading
import time

certdir, portf, mode = sys.argv[1:4]
seen = sys.argv[4] if len(sys.argv) > 4 else None
if mode not in ("idle-close", "close-on-next", "stall-on-next"):
    sys.exit("oneshot_upstream.py: unknown mode " + mode)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(os.path.join(certdir, "server.crt"), os.path.join(certdir, "server.key"))
lock = threading.Lock()


def note(line):
    if seen:
        with lock, open(seen, "a") as f:
            f.write(line + "\n")


def head(t):
    h = b""
    while b"\r\n\r\n" not in h:
        d = t.recv(4096)
        if not d:
            return None
        h += d
    return h


def serve(s, k):
    try:
        t = ctx.wrap_socket(s, server_side=True)
        h = head(t)
        if h is None:
            return
        note("%s conn %d" % (h.split(b"\r\n")[0].decode(), k))
        body = b"conn %d\n" % k
        t.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        if mode == "idle-close":
            time.sleep(0.1)
        else:
            h = head(t)
            if h is not None:
                note("%s conn %d dropped" % (h.split(b"\r\n")[0].decode(), k))
            if mode == "stall-on-next":
                time.sleep(30)  # past any timeout of the proxy under test
        t.close()
    except Exception:
        pass


ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(8)
with open(portf + ".tmp", "w") as f:
    f.write(str(ls.getsockname()[1]))
os.rename(portf + ".tmp", portf)
n = 0
while True:
    s, _ = ls.accept()
    n += 1
    threading.Thread(target=serve, args=(s, n), daemon=True).start()
