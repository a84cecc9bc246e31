#!/usr/bin/python3
"""Hold N CONNECT tunnels at once through a proxy and serve a request on each (bench/proxy.sh).

    tunnels.py --proxy HOST:PORT|env --host NAME --port P --ca FILE --n 1000 --sync DIR

Steps, with a file in --sync DIR marking each so that the caller can read the proxy's memory:
  DIR/idle     written first; then waits (at most 60 s) for DIR/go
  opens N tunnels (CONNECT, TLS, one GET of --path on each), at most 50 being set up at a time
  DIR/held     written when all N are open and served; then waits (at most 60 s) for DIR/release
  a second GET on every tunnel, all N still open, then closes them
Prints one line of key=value figures.  Standard library only; loopback use only.
"""
import argparse
import asyncio
import os
import ssl
import statistics
import sys
import time

A = None


async def wait_file(path, limit):
    end = time.monotonic() + limit
    while not os.path.exists(path):
        if time.monotonic() > end:
            raise SystemExit("tunnels: timed out waiting for " + path)
        await asyncio.sleep(0.02)


def touch(path):
    with open(path + ".tmp", "w") as f:
        f.write("1\n")
    os.rename(path + ".tmp", path)


async def get(reader, writer):
    writer.write(("GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (A.path, A.host, A.port)).encode())
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise IOError("status: " + head.split(b"\r\n")[0].decode(errors="replace"))
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)


async def open_tunnel(ctx, phost, pport, sem, lat):
    async with sem:
        t0 = time.monotonic()
        reader, writer = await asyncio.open_connection(phost, pport)
        writer.write(("CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n\r\n"
                      % (A.host, A.port, A.host, A.port)).encode())
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.split(b"\r\n")[0].split(b" ")[1:2] == [b"200"]:
            raise IOError("proxy: " + head.split(b"\r\n")[0].decode(errors="replace"))
        await writer.start_tls(ctx, server_hostname=A.host)
        await get(reader, writer)
        lat.append(time.monotonic() - t0)
        return reader, writer


async def main():
    global A
    p = argparse.ArgumentParser()
    p.add_argument("--proxy", required=True)
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca")
    p.add_argument("--path", default="/1k")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--sync", required=True)
    A = p.parse_args()
    if not 1 <= A.n <= 5000:
        raise SystemExit("tunnels: --n out of range")
    proxy = A.proxy
    if proxy == "env":
        proxy = os.environ.get("HTTPS_PROXY") or os.environ["https_proxy"]
    proxy = proxy.removeprefix("http://").rstrip("/")
    phost, _, pport = proxy.rpartition(":")
    ctx = ssl.create_default_context(cafile=A.ca)

    touch(os.path.join(A.sync, "idle"))
    await wait_file(os.path.join(A.sync, "go"), 60)

    sem = asyncio.Semaphore(50)
    lat = []
    t0 = time.monotonic()
    results = await asyncio.gather(*[open_tunnel(ctx, phost, int(pport), sem, lat)
                                     for _ in range(A.n)], return_exceptions=True)
    setup = time.monotonic() - t0
    conns = [r for r in results if not isinstance(r, BaseException)]
    errs = [r for r in results if isinstance(r, BaseException)]
    touch(os.path.join(A.sync, "held"))
    await wait_file(os.path.join(A.sync, "release"), 60)

    t1 = time.monotonic()
    second = await asyncio.gather(*[get(r, w) for r, w in conns], return_exceptions=True)
    serve = time.monotonic() - t1
    errs2 = [r for r in second if isinstance(r, BaseException)]
    for _, w in conns:
        w.close()
    print("tunnels=%d open_ok=%d open_errors=%d served_again_ok=%d served_again_errors=%d "
          "setup_s=%.2f open_median_ms=%.2f serve_all_s=%.3f"
          % (A.n, len(conns), len(errs), len(conns) - len(errs2), len(errs2), setup,
             statistics.median(lat) * 1e3 if lat else float("nan"), serve))
    if errs or errs2:
        print("tunnels: first error: %r" % ((errs or errs2)[0],), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
