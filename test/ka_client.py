#!/usr/bin/env python3
"""Kept-alive requests through agentjail's proxy to an intercepted host, from inside the jail.

    ka_client.py PORT CONN...

Each CONN is one client connection (CONNECT to api.example.test:PORT via $HTTPS_PROXY, TLS
trusting the run's CA), a comma-separated list of "METHOD PATH" requests, sent with
"Authorization: token $GH_TOKEN" (the placeholder). A leading "+" sends them all in one
write (pipelined); a leading "~" waits 0.5 s after each answer. One line per answer:
"PATH STATUS FIRST-BODY-LINE".
"""
import os
import socket
import ssl
import sys
import time
import urllib.parse

px = urllib.parse.urlsplit(os.environ["HTTPS_PROXY"])
host, port, tok = "api.example.test", int(sys.argv[1]), os.environ["GH_TOKEN"].encode()
auth = b"%s:%d" % (host.encode(), port)


def connect():
    s = socket.create_connection((px.hostname, px.port))
    s.sendall(b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (auth, auth))
    h = b""
    while not h.endswith(b"\r\n\r\n"):
        h += s.recv(1)
    t = ssl.create_default_context().wrap_socket(s, server_hostname=host)
    return t, t.makefile("rb")


def request(method, path):
    extra = b"Content-Length: 0\r\n" if method == "POST" else b""
    return b"%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: token %s\r\n%s\r\n" % (
        method.encode(), path.encode(), auth, tok, extra)


def answer(f, path):
    status = f.readline().split(b" ")[1].decode()
    n = 0
    while True:
        line = f.readline()
        if line == b"\r\n":
            break
        if line.lower().startswith(b"content-length:"):
            n = int(line.split(b":")[1])
    body = f.read(n).decode().strip().splitlines()
    print(path, status, body[0] if body else "", flush=True)


for conn in sys.argv[2:]:
    pipelined, pause = conn.startswith("+"), conn.startswith("~")
    reqs = [r.split(" ", 1) for r in conn.lstrip("+~").split(",")]
    t, f = connect()
    if pipelined:
        t.sendall(b"".join(request(m, p) for m, p in reqs))
    for m, p in reqs:
        if not pipelined:
            t.sendall(request(m, p))
        answer(f, p)
        if pause:
            time.sleep(0.5)  # the upstream may close its side meanwhile
    t.close()
