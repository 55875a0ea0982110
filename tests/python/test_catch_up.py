"""Automatic catch-up (Client(..., catch_up=True), epode_mam_set_auto_catch_up)
against a real Prosody with mod_mam: after a session that ended for good
(no resumption), what was sent meanwhile reaches the message handlers
once, as archived messages — also when the server's offline storage
hands the same messages over live — and a stored last id carries the
catch-up across a restart (a new Client)."""

import asyncio

import pytest

import epode

from _util import until


def test_catch_up_is_an_option_that_needs_no_ordering():
    c = epode.Client("me@example.invalid/r", "x", catch_up=True)
    assert c.mam.last_id is None
    c.mam.last_id = "stored-1"
    assert c.mam.last_id == "stored-1"
    with pytest.raises(ValueError):
        c.mam.last_id = ""
    c.mam.last_id = None
    assert c.mam.last_id is None


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    import xmppservers as xs
    from conftest import Server
    pki = xs.make_pki(str(tmp_path_factory.mktemp("pki-catchup")))
    srv = xs.SERVERS["prosody"](pki=pki, graceful_stop=False, modules=("mam",))
    srv.start()
    try:
        yield Server(srv)
    finally:
        srv.stop()


@pytest.mark.server
def test_messages_sent_while_away_arrive_once_after_a_fresh_session(archive):
    async def main():
        ajid, apw = archive.account("ka")
        bjid, bpw = archive.account("kb")
        a = epode.Client(ajid + "/a", apw, catch_up=True, **archive.kwargs())
        got = []

        @a.on_message
        def on_message(msg):
            if msg.body:
                got.append((msg.body, msg.archive_id is not None))

        b = epode.Client(bjid + "/b", bpw, **archive.kwargs())
        await a.connect(timeout=20)
        await b.connect(timeout=20)
        a.send_presence()
        await asyncio.sleep(0.3)
        b.send_message(ajid, "live before")
        await until(lambda: len(got) == 1, what="the live message")
        assert got == [("live before", False)]
        first_id = a.mam.last_id
        assert first_id  # our server's stanza-id
        await a.disconnect()  # the session ends for good: nothing to resume
        for i in range(3):
            b.send_message(ajid, "while away %d" % i)
        await asyncio.sleep(0.5)
        await a.connect(timeout=20)
        a.send_presence()  # the offline store hands them over live too
        await until(lambda: len(got) >= 4, what="the caught-up messages")
        await asyncio.sleep(1.0)  # anything more would be a duplicate
        bodies = [body for body, _ in got]
        assert bodies.count("live before") == 1
        for i in range(3):
            assert bodies.count("while away %d" % i) == 1, got
        assert len(got) == 4, got
        assert a.mam.last_id != first_id

        # a restart: a new client told the stored id catches up as well
        stored = a.mam.last_id
        await a.disconnect()
        b.send_message(ajid, "after restart")
        await asyncio.sleep(0.5)
        a2 = epode.Client(ajid + "/a2", apw, catch_up=True, **archive.kwargs())
        got2 = []
        a2.on_message(lambda m: got2.append((m.body, m.archive_id, m.timestamp))
                      if m.body else None)
        a2.mam.last_id = stored
        await a2.connect(timeout=20)
        await until(lambda: got2, what="the message sent after the restart")
        await asyncio.sleep(0.5)
        assert [g[0] for g in got2] == ["after restart"]
        assert got2[0][1] and got2[0][2] is not None  # archived, stamped by the archive
        await a2.disconnect()
        await b.disconnect()
    asyncio.run(main())


@pytest.mark.server
def test_a_failed_catch_up_reaches_on_error(archive):
    # a stored last id the archive does not know: the catch-up ends with
    # item-not-found, which a user saw vanish without a trace
    async def main():
        jid, pw = archive.account("kc")
        c = epode.Client(jid + "/c", pw, catch_up=True, **archive.kwargs())
        c.mam.last_id = "no-such-archive-id"
        errors = []
        c.on_error(errors.append)
        await c.connect(timeout=20)
        await until(lambda: errors, what="the catch-up's failure")
        assert isinstance(errors[0], epode.StanzaError)
        assert errors[0].condition == "item-not-found"
        assert "last_id" in str(errors[0])
        await c.disconnect()

    asyncio.run(main())
