"""epode.Client against a real Prosody on loopback (see conftest.py)."""

import asyncio
import gc
import os
import sys
import threading
import tracemalloc
import weakref

import pytest

import epode
from _util import until

pytestmark = pytest.mark.server


async def pair(prosody, **kw):
    """Two connected clients on fresh accounts; b has a fixed resource."""
    ja, pa = prosody.account("a")
    jb, pb = prosody.account("b")
    a = epode.Client(ja, pa, **prosody.kwargs(), **kw)
    b = epode.Client(jb + "/py", pb, **prosody.kwargs(), **kw)
    await asyncio.gather(a.connect(timeout=20), b.connect(timeout=20))
    return a, b


def test_readme_surface_messages_flow(prosody):
    async def main():
        a, b = await pair(prosody)
        got = asyncio.Queue()

        @b.on_message
        def on_message(msg):
            got.put_nowait((msg.from_, msg.body, msg.type, msg.stanza.name))

        mid = a.send_message(b.bound_jid, "hello \u00e9\u00e8 <b>")
        assert isinstance(mid, str) and mid
        frm, body, typ, name = await asyncio.wait_for(got.get(), 10)
        assert (frm, body, typ, name) == (a.bound_jid, "hello \u00e9\u00e8 <b>", "chat", "message")
        assert "TLS" in a.connection.security
        await a.disconnect()
        await b.disconnect()
        assert a.connection.reason == "closed" and not a.is_ready

    asyncio.run(main())


def test_async_with_and_async_handlers(prosody):
    async def main():
        ja, pa = prosody.account("a")
        jb, pb = prosody.account("b")
        async with epode.Client(ja, pa, **prosody.kwargs()) as a, \
                epode.Client(jb, pb, **prosody.kwargs()) as b:
            done = asyncio.get_running_loop().create_future()

            @b.on_message(type="chat")
            async def echo(msg):
                await asyncio.sleep(0.01)
                if msg.body:
                    b.send_message(msg.from_, "echo: " + msg.body)

            @a.on_message
            def back(msg):
                if msg.body and not done.done():
                    done.set_result(msg.body)

            a.send_message(b.bound_jid, "ping")
            assert await asyncio.wait_for(done, 10) == "echo: ping"
        assert not a.is_ready and not b.is_ready

    asyncio.run(main())


def test_iq_result_error_and_handlers_answering(prosody):
    async def main():
        a, b = await pair(prosody)

        @b.on_iq(ns="jabber:iq:version", type="get")
        def version(iq):
            r = iq.reply()
            q = r.add("query", "jabber:iq:version")
            q.add("name", text="pytest-bot")
            return r

        @b.on_iq(ns="urn:example:forbidden")
        def forbidden(iq):
            raise epode.StanzaError("forbidden", "not for you")

        @b.on_iq(ns="urn:example:slow")
        async def slow(iq):
            await asyncio.sleep(0.05)
            return iq.reply()

        @b.on_iq(ns="urn:example:broken")
        def broken(iq):
            raise ValueError("bug in the handler")

        errors = []
        b.on_error(errors.append)

        def ask(ns):
            iq = epode.Iq(type="get", to=b.bound_jid)
            iq.add("query", ns)
            return a.iq(iq, timeout=10)

        r = await ask("jabber:iq:version")
        assert r.type == "result" and r.find("query").find_text("name") == "pytest-bot"
        with pytest.raises(epode.StanzaError) as ei:
            await ask("urn:example:forbidden")
        assert (ei.value.condition, ei.value.text) == ("forbidden", "not for you")
        assert ei.value.stanza.type == "error"
        assert (await ask("urn:example:slow")).type == "result"
        with pytest.raises(epode.StanzaError) as ei:
            await ask("urn:example:broken")
        assert ei.value.condition == "internal-server-error"
        assert len(errors) == 1 and isinstance(errors[0], ValueError)
        with pytest.raises(epode.StanzaError) as ei:
            await ask("urn:example:nobody-handles-this")
        assert ei.value.condition == "service-unavailable"
        # an IQ that is not get/set, or not an IQ, is refused before sending
        with pytest.raises(ValueError):
            await a.iq(epode.Iq(type="result", to=b.bound_jid))
        await a.disconnect()
        await b.disconnect()

    asyncio.run(main())


def test_iq_timeout_and_cancel_when_the_stream_ends(prosody):
    async def main():
        a, b = await pair(prosody)

        @b.on_iq(ns="urn:example:silent")
        def silent(iq):
            return True  # handled, but never answered

        iq = epode.Iq(type="get", to=b.bound_jid)
        iq.add("query", "urn:example:silent")
        with pytest.raises(epode.TimeoutError):
            await a.iq(iq, timeout=0.3)
        pending = asyncio.ensure_future(a.iq(iq.copy(), timeout=30))
        await asyncio.sleep(0.2)
        await a.disconnect()
        with pytest.raises(epode.Error) as ei:
            await pending
        assert ei.value.code == epode.ECANCELED
        await b.disconnect()

    asyncio.run(main())


def test_a_raising_handler_is_reported_and_the_client_goes_on(prosody, caplog):
    async def main():
        a, b = await pair(prosody)
        seen = asyncio.Queue()

        @b.on_message
        def bad(msg):
            if msg.body == "boom":
                raise RuntimeError("handler bug")

        @b.on_message
        def good(msg):
            if msg.body:
                seen.put_nowait(msg.body)

        a.send_message(b.bound_jid, "boom")
        a.send_message(b.bound_jid, "after")
        assert await asyncio.wait_for(seen.get(), 10) == "boom"
        assert await asyncio.wait_for(seen.get(), 10) == "after"
        assert b.is_ready
        await a.disconnect()
        await b.disconnect()

    with caplog.at_level("ERROR", logger="epode"):
        asyncio.run(main())
    assert any("RuntimeError" in r.getMessage() or (r.exc_info and r.exc_info[0] is RuntimeError)
               for r in caplog.records)


def test_wrong_password_and_untrusted_certificate(prosody):
    async def main():
        j, p = prosody.account("w")
        c = epode.Client(j, p + "x", **prosody.kwargs())
        with pytest.raises(epode.Error) as ei:
            await c.connect(timeout=20)
        assert ei.value.reason == "auth" and ei.value.condition == "not-authorized"
        c = epode.Client(j, p, server=prosody.host, port=prosody.port)  # system CAs only
        with pytest.raises(epode.Error) as ei:
            await c.connect(timeout=20)
        assert ei.value.reason == "tls"

    asyncio.run(main())


def test_direct_tls(prosody):
    async def main():
        j, p = prosody.account("d")
        c = epode.Client(j, p, server=prosody.host, port=prosody.direct_tls_port,
                         ca_file=prosody.ca_file, direct_tls=True)
        await c.connect(timeout=20)
        assert "direct" in c.connection.security.lower() or "TLS" in c.connection.security
        await c.disconnect()

    asyncio.run(main())


def test_blocking_run_serves_until_stopped(prosody):
    j, p = prosody.account("r")
    c = epode.Client(j, p, **prosody.kwargs())
    events = []

    @c.on_event
    def on_event(name):
        events.append(name)
        if name == "ready":
            c.send_presence(status="here")
            c.stop()

    c.run(timeout=30)
    assert events[0] == "connecting" and "ready" in events and events[-1] == "disconnected"
    assert c.connection.reason == "closed"
    # run() again on the same client, then asyncio on the same context
    events.clear()
    c.run(timeout=30)
    assert "ready" in events

    async def main():
        await c.connect(timeout=20)
        await c.disconnect()
    asyncio.run(main())


def test_a_connected_client_stays_alive_until_disconnected(prosody):
    async def main():
        a, b = await pair(prosody)
        got = asyncio.Queue()
        b.on_message(lambda msg: got.put_nowait(msg.body) if msg.body else None)
        ref = weakref.ref(b)
        bjid = b.bound_jid
        del b
        gc.collect()
        assert ref() is not None  # still connected: kept alive
        a.send_message(bjid, "still there?")
        assert await asyncio.wait_for(got.get(), 10) == "still there?"
        await ref().disconnect()
        gc.collect()
        assert ref() is None
        await a.disconnect()

    asyncio.run(main())


def test_ten_thousand_messages_without_leaks(prosody):
    """The issue's promise: no leaks under a 10,000-message run."""
    async def burst(a, b, got, n):
        for i in range(n):
            a.send_message(b.bound_jid, "message %d" % i)
        for _ in range(n):
            await asyncio.wait_for(got.get(), 30)

    async def main():
        a, b = await pair(prosody)
        got = asyncio.Queue()

        @b.on_message
        def count(msg):
            if msg.body:
                got.put_nowait(len(msg.body))

        await burst(a, b, got, 1000)  # warm up caches and buffers
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        await burst(a, b, got, 10000)
        gc.collect()
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
        await a.disconnect()
        await b.disconnect()
        return grown

    grown = asyncio.run(main())
    assert grown < 256 * 1024, "Python memory grew by %d bytes over 10,000 messages" % grown


# ---- regressions from the review of the binding --------------------------------

def test_a_client_moves_between_asyncio_runs(prosody):
    j, p = prosody.account("m")
    c = epode.Client(j, p, **prosody.kwargs())
    unraisable = []
    old_hook = sys.unraisablehook
    sys.unraisablehook = unraisable.append
    try:
        asyncio.run(c.connect(timeout=20))
        c.send_message(c.bound_jid, "between loops")  # no loop runs now
        asyncio.run(asyncio.wait_for(c.disconnect(), 20))
    finally:
        sys.unraisablehook = old_hook
    assert c.connection.reason == "closed"
    assert not unraisable, [u.exc_value for u in unraisable]


def test_async_iq_handlers_always_answer(prosody):
    async def main():
        a, b = await pair(prosody)

        @b.on_iq(ns="urn:example:none")
        async def nothing(iq):
            return None

        @b.on_iq(ns="urn:example:odd")
        async def odd(iq):
            raise epode.StanzaError("no-such-condition", "made up")

        @b.on_iq(ns="urn:example:typed")
        def typed(iq):
            raise epode.StanzaError("not-allowed", type="auth")

        async def ask(ns):
            iq = epode.Iq(type="get", to=b.bound_jid)
            iq.add("query", ns)
            with pytest.raises(epode.StanzaError) as ei:
                await a.iq(iq, timeout=10)
            return ei.value

        assert (await ask("urn:example:none")).condition == "service-unavailable"
        e = await ask("urn:example:odd")
        assert (e.condition, e.text) == ("undefined-condition", "made up")
        e = await ask("urn:example:typed")
        assert (e.condition, e.type) == ("not-allowed", "auth")
        await a.disconnect()
        await b.disconnect()

    asyncio.run(main())


def test_concurrent_connects_and_disconnects(prosody):
    async def main():
        j, p = prosody.account("cc")
        c = epode.Client(j, p, **prosody.kwargs())
        await asyncio.gather(c.connect(timeout=20), c.connect(timeout=20))
        assert c.is_ready
        waiter = asyncio.ensure_future(c.wait_disconnected())
        await asyncio.sleep(0)
        await asyncio.wait_for(asyncio.gather(c.disconnect(), c.disconnect(), waiter), 20)
        assert c.connection.reason == "closed"

    asyncio.run(main())


def test_drain_waits_out_a_burst_and_the_send_limits(prosody):
    """Back-pressure (issue 11 item 9): drain() returns at once with
    nothing queued, waits for the 'drained' event after a burst over the
    64 KiB mark, and after epode.EBUSY at a send limit until the server's
    acks make room; it raises if the connection ends first."""
    async def main():
        a, b = await pair(prosody, stream_management=True)
        events, acked, got = [], [], []
        a.on_event(events.append)
        a.connection.on_ack = lambda ok, sid, xml: acked.append(ok)
        b.on_message(lambda m: got.append(m.body) if m.body else None)
        await asyncio.wait_for(a.drain(), 1)  # nothing queued: at once
        assert "drained" not in events
        # Until <enabled/> stanzas wait in the queue, not in the output.
        await until(lambda: a.connection.sm_enabled, 10, what="stream management")

        n = 100
        for i in range(n):  # 200 kB in one loop turn
            a.send_message(b.bound_jid, "%d %s" % (i, "x" * 2000))
        assert a.connection.pending_bytes > 65536 and a.connection.draining
        await asyncio.wait_for(a.drain(), 20)
        assert events.count("drained") == 1
        assert a.connection.pending_bytes <= 65536
        await until(lambda: len(got) == n and len(acked) == n, 20, what="the burst delivered")

        a.connection.set_send_limits(3, 0)
        for i in range(3):
            a.send_message(b.bound_jid, "limited %d" % i)
        with pytest.raises(epode.Error) as ei:
            a.send_message(b.bound_jid, "refused")
        assert ei.value.code == epode.EBUSY and ei.value.name == "EBUSY"
        assert a.connection.draining
        await asyncio.wait_for(a.drain(), 20)  # the server acked the three
        assert events.count("drained") == 2
        a.send_message(b.bound_jid, "after the ack")
        await until(lambda: "after the ack" in got, 20, what="the message after drain()")
        assert "refused" not in got

        await until(lambda: len(acked) == n + 4, 20, what="every ack")
        for i in range(3):
            a.send_message(b.bound_jid, "last %d" % i)
        with pytest.raises(epode.Error):
            a.send_message(b.bound_jid, "refused")
        waiter = asyncio.ensure_future(a.drain())
        await asyncio.sleep(0)
        assert not waiter.done()
        await a.disconnect()
        with pytest.raises(epode.Error):
            await waiter
        await b.disconnect()

    asyncio.run(main())


def test_stop_from_another_thread_closes_cleanly(prosody):
    j, p = prosody.account("st")
    c = epode.Client(j, p, **prosody.kwargs())

    @c.on_event
    def ready(name):
        if name == "ready":
            threading.Timer(0.2, c.stop).start()

    c.run(timeout=10)  # without the wakeup the close waits for epode's next deadline
    assert c.connection.reason == "closed"


def fault_proxy_class():
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                    "integration"))
    from faultproxy import FaultProxy
    return FaultProxy


def test_stream_management_resumes_across_cuts(prosody):
    """A client with stream management and reconnection, behind a proxy
    that resets its link: it resumes (new socket, same session, the
    asyncio loop now watching the new fd), messages sent across the cuts
    all arrive, and nothing is reported unacknowledged."""
    FaultProxy = fault_proxy_class()

    async def main(proxy):
        ja, pa = prosody.account("sm")
        jb, pb = prosody.account("rcv")
        a = epode.Client(ja, pa, server=prosody.host, port=proxy.port, ca_file=prosody.ca_file,
                         stream_management=True, reconnect=True)
        b = epode.Client(jb + "/r", pb, **prosody.kwargs())
        events, acked, lost = [], [], []
        a.on_event(events.append)
        a.connection.on_ack = lambda ok, sid, xml: (acked if ok else lost).append(sid)
        got = []
        b.on_message(lambda m: got.append(m.body) if m.body else None)
        await asyncio.gather(a.connect(timeout=20), b.connect(timeout=20))
        # <enable/> goes out with the login; the server's <enabled/> follows READY
        await until(lambda: a.connection.sm_enabled, 20.0, what="stream management")
        sent = []
        for round_ in range(3):
            for i in range(20):
                sent.append(a.send_message(b.bound_jid, "r%d-%d" % (round_, i)))
            await asyncio.sleep(0.3)
            proxy.cut_all()
            await until(lambda: events.count("resumed") > round_, 20.0,
                        what="resumption %d" % round_)
        await until(lambda: len(got) >= 60, 20.0, what="all messages")
        await until(lambda: len(acked) >= 60, 20.0, what="all acknowledgements")
        assert sorted(got) == sorted("r%d-%d" % (r, i) for r in range(3) for i in range(20))
        assert lost == [] and set(acked) >= set(sent)
        await a.disconnect()
        await b.disconnect()

    with FaultProxy(prosody.host, prosody.port, seed=7) as proxy:
        asyncio.run(main(proxy))
        assert proxy.cuts >= 3



def cut_sender(prosody, proxy, names):
    """A sender behind `proxy` with stream management, resending and quick
    reconnection, a receiver on a direct link, and the sender's acks:
    (a, b, acked, handed_back)."""
    ja, pa = prosody.account(names[0])
    jb, pb = prosody.account(names[1])
    a = epode.Client(ja, pa, server=prosody.host, port=proxy.port, ca_file=prosody.ca_file,
                     stream_management=True, reconnect=True, resend_unacked=True)
    b = epode.Client(jb + "/r", pb, **prosody.kwargs())
    acked, handed_back = set(), set()

    def on_ack(ok, sid, xml):
        (acked if ok else handed_back).add(sid)
        if ok:
            handed_back.discard(sid)  # reported on one stream, confirmed after a resume

    a.connection.on_ack = on_ack
    # notice silence quickly, come back quickly
    a.connection.configure(sm_ack_wait=0.3, sm_dead_link=2.0, reconnect=True,
                           reconnect_min=0.05, reconnect_max=1.0)
    return a, b, acked, handed_back


def test_bursty_sender_through_byte_scheduled_cuts(prosody):
    """Issue 11's bursty test through the binding: 2,000 messages queued
    at once (no window, no rate) by a client with stream_management=True
    and reconnect=True, behind a proxy that resets its link after every
    4-12 kB it sends. Every message is acknowledged or handed back, and
    every acknowledged one reaches the receiver exactly once."""
    FaultProxy = fault_proxy_class()
    n = 2000

    async def main(proxy):
        a, b, acked, handed_back = cut_sender(prosody, proxy, ("burst", "brcv"))
        got = []
        b.on_message(lambda m: got.append(m.stanza["id"]) if m.body else None)
        await b.connect(timeout=20)
        await a.connect(timeout=20)
        proxy.cut_every(4000, 12000, "up", "rst")
        sent = [a.send_message(b.bound_jid, "burst %d" % i) for i in range(n)]
        await until(lambda: len(acked) + len(handed_back) >= n, 150.0, what="every message settled")
        await until(lambda: set(got) >= acked, 30.0, what="every acknowledged message delivered")
        proxy.cut_every(None)
        assert acked | handed_back == set(sent)
        dups = [i for i in acked if got.count(i) > 1]
        assert dups == [], "acknowledged and delivered twice: %d" % len(dups)
        await a.disconnect()
        await b.disconnect()
        return len(acked), len(handed_back)

    with FaultProxy(prosody.host, prosody.port, seed=11) as proxy:
        acked, back = asyncio.run(main(proxy))
        print("py-sm-burst prosody: sent=%d acked=%d handed_back=%d cuts=%d"
              % (n, acked, back, proxy.cuts))
        assert proxy.cuts >= 20


def test_drain_waits_across_repairable_cuts(prosody):
    """A sender that paces itself with drain() (send until EBUSY, or
    ESTATE while a cut is being repaired, await drain(), go on) through a
    proxy that resets the link after every 4-12 kB: a cut that
    reconnection repairs does not make drain() raise, drain() returns once
    the link is back, and every message ends acknowledged or handed back.
    drain() used to raise at each cut, and return at once while the link
    was down, so such a loop had to catch, guess and spin."""
    FaultProxy = fault_proxy_class()
    n = 1500

    async def main(proxy):
        a, b, acked, handed_back = cut_sender(prosody, proxy, ("pace", "prcv"))
        # a small window, so that drain() is awaited many times
        a.connection.set_send_limits(max_unacked_stanzas=50)
        events = []
        a.on_event(events.append)
        await b.connect(timeout=20)
        await a.connect(timeout=20)
        proxy.cut_every(4000, 12000, "up", "rst")
        sent, drains = [], 0
        i = 0
        while i < n:
            try:
                sent.append(a.send_message(b.bound_jid, "paced %d" % i))
                i += 1
            except epode.Error as e:
                # EBUSY: the window is full; ESTATE: the link was cut under
                # this burst and reconnection is on its way
                if e.code != epode.EBUSY and not (e.code == epode.ESTATE
                                                  and a.connection.will_reconnect):
                    raise
                drains += 1
                await asyncio.wait_for(a.drain(), 60)  # must not raise at a cut
        await until(lambda: len(acked) + len(handed_back) >= n, 150.0, what="every message settled")
        proxy.cut_every(None)
        assert acked | handed_back == set(sent)
        cuts = events.count("disconnected")
        await a.disconnect()
        await b.disconnect()
        return drains, cuts

    with FaultProxy(prosody.host, prosody.port, seed=23) as proxy:
        drains, cuts = asyncio.run(main(proxy))
        print("py-drain-cuts prosody: drains=%d disconnects=%d proxy-cuts=%d"
              % (drains, cuts, proxy.cuts))
        assert proxy.cuts >= 5 and cuts >= 1 and drains >= 10


def test_ping_and_software_version(prosody):
    async def main():
        a, b = await pair(prosody)
        rtt = await a.ping()  # the server
        assert isinstance(rtt, float) and 0 <= rtt < 20
        # b has used nothing, yet answers pings and service discovery, as
        # a client must (a user saw service-unavailable for both)
        assert await a.ping(b.bound_jid, timeout=10) >= 0
        info = await a.disco.info(b.bound_jid, timeout=10)
        assert "urn:xmpp:ping" in info.features
        assert "http://jabber.org/protocol/disco#info" in info.features
        # an error answer is raised with its condition
        with pytest.raises(epode.StanzaError) as ei:
            await a.ping(b.bound_jid.split("/")[0] + "/no-such-resource", timeout=10)
        assert ei.value.condition == "service-unavailable"
        with pytest.raises(epode.Error) as ei:
            await a.ping("not a jid@@")
        assert ei.value.code == epode.EJID
        with pytest.raises(ValueError):
            await a.ping(timeout=-1)

        with pytest.raises(epode.StanzaError) as ei:
            await a.version(b.bound_jid, timeout=10)
        assert ei.value.condition == "service-unavailable"
        b.set_version("testbot", "1.2", "Plan 9")
        assert await a.version(b.bound_jid, timeout=10) == ("testbot", "1.2", "Plan 9")
        b.set_version("testbot", "1.3")  # the OS not disclosed
        assert await a.version(b.bound_jid, timeout=10) == ("testbot", "1.3", None)
        name, version, _ = await a.version()  # the server's
        assert name == "Prosody" and version
        # asking made a's helper, which answers with the library's name
        assert (await b.version(a.bound_jid, timeout=10))[:2] == ("epode", epode.__version__)

        await a.disconnect()
        with pytest.raises(epode.Error) as ei:
            await a.ping()
        assert ei.value.code == epode.ESTATE
        await b.disconnect()

    asyncio.run(main())
