#!/usr/bin/python3
"""bench/py_bench.py — one measurement of the Python binding, or of
slixmpp, against bench/fake_server (loopback, no TLS, SASL ANONYMOUS).

    py_bench.py --lib epode|slixmpp --port P --test recv|send|idle [-n N]

recv: the server pushes N chat messages; a message handler counts them
      (reading .body, as any bot does): messages/s from request to last.
send: the client sends N chat messages; the server counts them: messages/s
      from the first send until the server has them all.
idle: N sessions logged in and idle in one process: RSS growth / N.
Prints one line "RESULT lib=... test=... value=..." (rates in msg/s,
memory in bytes per session). Run by bench/py_run.sh.
"""

import argparse
import asyncio
import logging
import os
import resource
import sys
import time

DOMAIN = "montague.example"


def rss_bytes():
    """Resident bytes, after a full collection and glibc's trim — done the
    same way for both libraries, so what is measured is what they hold."""
    import ctypes
    import gc
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


# ---- epode ---------------------------------------------------------------

async def epode_session(port):
    import epode
    c = epode.Client("romeo@" + DOMAIN, None, server="127.0.0.1", port=port, tls="disabled",
                     mechanisms="ANONYMOUS")
    await c.connect(timeout=30)
    return c


async def epode_recv(port, n):
    import epode
    c = await epode_session(port)
    done = asyncio.get_running_loop().create_future()
    count = 0

    def on_message(msg):
        nonlocal count
        if msg.body is not None:
            count += 1
            if count == n:
                done.set_result(None)

    c.on_message(on_message)
    t0 = time.perf_counter()
    await c.iq(epode.Iq(type="get", id="bench-push-%d" % n), timeout=60)
    await done
    dt = time.perf_counter() - t0
    await c.disconnect()
    return n / dt


async def epode_stats(c):
    import epode
    r = await c.iq(epode.Iq(type="get", id="bench-stats-%d" % time.monotonic_ns()), timeout=60)
    return int(r.find("stats", "urn:epode:bench")["stanzas"])


async def epode_send(port, n):
    import epode
    c = await epode_session(port)
    await c.iq(epode.Iq(type="get", id="bench-reset-1"), timeout=60)
    to = "juliet@capulet.example/balcony"
    body = "Wherefore art thou, Romeo? " * 3
    t0 = time.perf_counter()
    send = c.send_message
    for i in range(n):
        send(to, body)
        if i % 1000 == 999:
            await asyncio.sleep(0)  # let the loop write, as a real program would
    while await epode_stats(c) < n:
        await asyncio.sleep(0.001)
    dt = time.perf_counter() - t0
    await c.disconnect()
    return n / dt


async def epode_idle(port, n):
    sessions = [await epode_session(port) for _ in range(5)]  # warm up
    before = rss_bytes()
    for _ in range(n):
        sessions.append(await epode_session(port))
    await asyncio.sleep(0.5)
    per = (rss_bytes() - before) / n
    for s in sessions:
        await s.disconnect()
    return per


# ---- slixmpp ----------------------------------------------------------------

async def slix_session(port):
    import slixmpp
    c = slixmpp.ClientXMPP("romeo@" + DOMAIN, "")
    c["feature_mechanisms"].unencrypted_plain = True
    ready = asyncio.get_running_loop().create_future()
    c.add_event_handler("session_start", lambda _: ready.done() or ready.set_result(None))
    c.connect(("127.0.0.1", port), use_ssl=False, force_starttls=False, disable_starttls=True)
    await asyncio.wait_for(ready, 30)
    return c


async def slix_iq(c, iq_id):
    iq = c.make_iq_get()
    iq["id"] = iq_id
    iq["to"] = DOMAIN
    return await iq.send(timeout=60)


async def slix_recv(port, n):
    c = await slix_session(port)
    done = asyncio.get_running_loop().create_future()
    count = 0

    def on_message(msg):
        nonlocal count
        if msg["body"]:
            count += 1
            if count == n:
                done.set_result(None)

    c.add_event_handler("message", on_message)
    t0 = time.perf_counter()
    await slix_iq(c, "bench-push-%d" % n)
    await done
    dt = time.perf_counter() - t0
    c.disconnect()
    return n / dt


async def slix_send(port, n):
    c = await slix_session(port)
    await slix_iq(c, "bench-reset-1")
    to = "juliet@capulet.example/balcony"
    body = "Wherefore art thou, Romeo? " * 3
    t0 = time.perf_counter()
    for i in range(n):
        c.send_message(mto=to, mbody=body, mtype="chat")
        if i % 1000 == 999:
            await asyncio.sleep(0)
    while True:
        r = await slix_iq(c, "bench-stats-%d" % time.monotonic_ns())
        got = int(r.xml.find("{urn:epode:bench}stats").get("stanzas"))
        if got >= n:
            break
        await asyncio.sleep(0.001)
    dt = time.perf_counter() - t0
    c.disconnect()
    return n / dt


async def slix_idle(port, n):
    sessions = [await slix_session(port) for _ in range(5)]
    before = rss_bytes()
    for _ in range(n):
        sessions.append(await slix_session(port))
    await asyncio.sleep(0.5)
    per = (rss_bytes() - before) / n
    for s in sessions:
        s.disconnect()
    return per


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", choices=("epode", "slixmpp"), required=True)
    ap.add_argument("--test", choices=("recv", "send", "idle"), required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("-n", type=int, default=None)
    a = ap.parse_args()
    logging.basicConfig(level=logging.CRITICAL)
    n = a.n or {"recv": 100000, "send": 100000, "idle": 200}[a.test]
    fn = {("epode", "recv"): epode_recv, ("epode", "send"): epode_send,
          ("epode", "idle"): epode_idle, ("slixmpp", "recv"): slix_recv,
          ("slixmpp", "send"): slix_send, ("slixmpp", "idle"): slix_idle}[(a.lib, a.test)]
    value = asyncio.run(fn(a.port, n))
    print("RESULT lib=%s test=%s n=%d value=%.0f" % (a.lib, a.test, n, value))
    return 0


if __name__ == "__main__":
    sys.exit(main())
