"""The modern IM layer of the Python binding (epode/_modern.py over
bindings/python/src/modern.c): message features on epode.Message,
builders, client.blocking, client.mam, client.set_active(). Unit tests
first (no server), then against a real Prosody with mam, blocklist and
csi (its own, started once for this module)."""

import asyncio
import datetime as dt

import pytest

import epode
from epode import _epode

from _util import until


def parse(xml):
    return epode.Stanza.parse(xml)


# ---- without a server ----------------------------------------------------------

def test_message_features_are_read():
    m = parse("<message xmlns='jabber:client' from='juliet@example.com/b' type='chat' id='c2'>"
              "<body>fixed</body><replace xmlns='urn:xmpp:message-correct:0' id='c1'/>"
              "<markable xmlns='urn:xmpp:chat-markers:0'/><store xmlns='urn:xmpp:hints'/>"
              "<no-copy xmlns='urn:xmpp:hints'/>"
              "<delay xmlns='urn:xmpp:delay' from='example.com' stamp='2010-07-10T23:08:25Z'/>"
              "<origin-id xmlns='urn:xmpp:sid:0' id='o2'/></message>")
    assert isinstance(m, epode.Message)
    assert m.replace_id == "c1" and m.retract_id is None and m.markable
    assert m.hints == frozenset({"store", "no-copy"})
    assert m.timestamp == dt.datetime(2010, 7, 10, 23, 8, 25, tzinfo=dt.timezone.utc)
    assert m.delay_from == "example.com" and m.origin_id == "o2" and m.ref_id == "o2"
    assert m.archive_id is None and m.reactions == () and m.reactions_to is None
    assert m.marker is None and m.reply_to_id is None
    assert m.reply_body is None  # not a reply (the body is m.body)
    # the sender check
    assert m.same_sender("juliet@example.com/a")
    assert not m.same_sender("mallory@evil.example/a")
    assert not m.same_sender("juliet@example.com/a", mode="occupant")
    with pytest.raises(ValueError):
        m.same_sender("x@y", mode="sideways")


def test_correction_from_another_sender_is_refused():
    m = parse("<message xmlns='jabber:client' from='room@muc.example/mallory' type='groupchat'>"
              "<body>x</body><replace xmlns='urn:xmpp:message-correct:0' id='s1'/></message>")
    assert m.replace_id == "s1"
    assert not m.same_sender("room@muc.example/romeo")
    assert m.same_sender("room@muc.example/mallory")
    m = parse("<message xmlns='jabber:client' from='room@muc.example/romeo' type='groupchat'>"
              "<occupant-id xmlns='urn:xmpp:occupant-id:0' id='o2'/>"
              "<retract xmlns='urn:xmpp:message-retract:1' id='s1'/></message>")
    assert m.retract_id == "s1" and m.occupant_id == "o2"
    assert m.ref_id is None  # groupchat: only a verified stanza-id names it
    assert not m.same_sender("room@muc.example/romeo", occupant_id="o1")
    assert m.same_sender("room@muc.example/romeo", occupant_id="o2")


def test_builders_make_what_the_readers_read():
    r = epode.reactions("romeo@example.net", "m1", ["\U0001F44B", "\U0001F422"])
    assert r.reactions_to == "m1" and r.reactions == ("\U0001F44B", "\U0001F422")
    assert r.type == "chat" and "store" in r.hints and r.id
    with pytest.raises(epode.Error):
        epode.reactions("romeo@example.net", "m1", ["a", "a"])
    t = epode.retraction("romeo@example.net", "m1")
    assert t.retract_id == "m1" and t.body and "store" in t.hints
    p = epode.reply("anna@example.com", "Great idea!", "m1", reply_to="anna@example.com/laptop",
                    quote="We should bake a cake")
    assert p.body == "> We should bake a cake\nGreat idea!"
    assert p.reply_body == "Great idea!" and p.reply_to_id == "m1"
    assert p.reply_to == "anna@example.com/laptop"
    k = epode.marker("romeo@example.net", "m1")
    assert k.marker == "displayed" and k.marker_id == "m1" and k.body is None
    c = epode.correction("romeo@example.net", "fixed", "m1")
    assert c.replace_id == "m1" and c.body == "fixed"
    m = epode.Message("romeo@example.net", "hi", "chat")
    assert m.add_markable() is m and m.markable
    assert m.add_hints("no-store", "no-copy").hints == frozenset({"no-store", "no-copy"})
    assert m.set_reply("m0", "romeo@example.net/x").reply_to_id == "m0"
    with pytest.raises(ValueError):
        m.add_hints("keep-forever")


def test_hostile_reaction_lists_read_as_none():
    many = "".join("<reaction>r%d</reaction>" % i for i in range(100))
    m = parse("<message xmlns='jabber:client' from='j@e/b'><reactions xmlns='urn:xmpp:reactions:0'"
              " id='m1'>%s</reactions></message>" % many)
    assert m.reactions_to is None and m.reactions == ()


def test_archived_message_reads_the_archive_not_its_own_claim():
    w = parse("<message xmlns='jabber:client' to='a@b/c'><result xmlns='urn:xmpp:mam:2' queryid='q' "
              "id='arch-1'><forwarded xmlns='urn:xmpp:forward:0'>"
              "<delay xmlns='urn:xmpp:delay' stamp='2010-07-10T23:08:25Z'/>"
              "<message xmlns='jabber:client' from='j@e/b'><body>hi</body>"
              "<delay xmlns='urn:xmpp:delay' stamp='1999-01-01T00:00:00Z'/></message>"
              "</forwarded></result></message>")
    # the wrapper is no archived message itself (client.mam hands out the
    # inner <message/> as an epode.Message; see the server test)
    assert isinstance(w, epode.Message) and w.archive_id is None and w.timestamp is None
    inner = w.find("result").find("forwarded").find("message")
    assert inner["from"] == "j@e/b"


def test_helpers_are_lazy_and_set_active_before_connect():
    c = epode.Client("someone@localhost", "pw")
    assert "_im_blocking" not in c.__dict__
    assert isinstance(c.blocking, epode.Blocking) and c.blocking is c.blocking
    assert isinstance(c.mam, epode.Mam) and c.mam is c.mam
    assert c.blocking.blocked == () and "x@y" not in c.blocking and not c.blocking.received
    c.set_active(False)
    assert c.__dict__["_im_csi"].active is False
    assert c.__dict__["_im_csi"].supported is False
    c.set_active(True)


def test_time_helpers():
    assert _epode.time_parse("2010-07-10T23:08:25.5Z") == 1278803305500
    assert _epode.time_format(1278803305500) == "2010-07-10T23:08:25.500Z"
    with pytest.raises(ValueError):
        _epode.time_parse("yesterday")


# ---- against Prosody (mam, blocklist, csi) ----------------------------------------

@pytest.fixture(scope="module")
def modern(tmp_path_factory):
    import xmppservers as xs
    from conftest import Server
    pki = xs.make_pki(str(tmp_path_factory.mktemp("pki-modern")))
    srv = xs.SERVERS["prosody"](pki=pki, graceful_stop=False, modules=("mam", "blocklist", "csi"))
    srv.start()
    try:
        yield Server(srv)
    finally:
        srv.stop()


async def connected(server, prefix):
    jid, pw = server.account(prefix)
    c = epode.Client(jid + "/py", pw, **server.kwargs())
    await c.connect(timeout=20)
    return c


@pytest.mark.server
def test_blocking_block_unblock_list(modern):
    async def main():
        a = await connected(modern, "ba")
        events = []
        a.blocking.on_change(lambda ev, jids: events.append((ev, jids)))
        assert await a.blocking.list() == []
        assert await a.blocking.block("Spammer@Example.invalid") is None
        assert a.blocking.blocked == ("spammer@example.invalid",)
        assert "spammer@example.invalid" in a.blocking
        assert ("blocked", ("spammer@example.invalid",)) in events
        await a.blocking.block(["x@example.invalid", "example.org"])
        assert await a.blocking.list() == ["example.org", "spammer@example.invalid",
                                           "x@example.invalid"]
        await a.blocking.unblock("x@example.invalid")
        assert "x@example.invalid" not in a.blocking
        await a.blocking.unblock_all()
        assert a.blocking.blocked == ()
        assert events[-1][0] == "unblocked_all"
        await a.disconnect()
    asyncio.run(main())


@pytest.mark.server
def test_mam_fetch_pages_and_catch_up(modern):
    async def main():
        a = await connected(modern, "ma")
        b = await connected(modern, "mb")
        got = []
        every = []  # archive result wrappers are no messages: on_message never sees them
        a.on_message(lambda m: got.append(m) if m.body else None)
        a.on_message(every.append)
        for i in range(1, 6):
            b.send_message(a.bound_jid, "archived %d" % i)
        await until(lambda: len(got) == 5, what="the messages")
        bare_b = b.bound_jid.split("/")[0]
        page = await a.mam.fetch(with_=bare_b, max=100, page_size=2)
        assert [m.body for m in page] == ["archived %d" % i for i in range(1, 6)]
        assert len(set(m.archive_id for m in page)) == 5
        assert all(m.ref_id for m in page)
        one = await a.mam.page(with_=bare_b, max=2)
        assert isinstance(one, epode.Page) and not one.complete
        assert one.first == page[0].archive_id and one.last == page[1].archive_id
        assert [m.body for m in one.messages] == ["archived 1", "archived 2"]
        nxt = await a.mam.page(with_=bare_b, max=10, after=one.last)
        assert nxt.complete and [m.body for m in nxt.messages][0] == "archived 3"
        assert all(m.from_ == b.bound_jid and m.timestamp is not None for m in page)
        assert all(isinstance(m.timestamp, dt.datetime) for m in page)
        # the archive's stamp: within the last minutes, not a claim of the message
        now = dt.datetime.now(dt.timezone.utc)
        assert all(abs((now - m.timestamp).total_seconds()) < 600 for m in page)
        # the most recent three, backwards
        last = await a.mam.fetch(with_=bare_b, max=3, before="", page_size=2)
        assert [m.body for m in last] == ["archived 3", "archived 4", "archived 5"]
        # a time range in the future: nothing
        soon = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
        assert list(await a.mam.fetch(with_=bare_b, start=soon)) == []
        # catch up after the second
        rest = await a.mam.catch_up(page[1].archive_id, page_size=2)
        assert [m.body for m in rest.messages] == ["archived 3", "archived 4", "archived 5"]
        # an id the archive does not have
        with pytest.raises(epode.StanzaError) as ei:
            await a.mam.page(after="no-such-id")
        assert ei.value.condition == "item-not-found"
        assert len(every) == 5 and not any(m.find("result", "urn:xmpp:mam:2") for m in every)
        await a.disconnect()
        await b.disconnect()
    asyncio.run(main())


@pytest.mark.server
def test_set_active_on_a_server_that_offers_csi(modern):
    async def main():
        a = await connected(modern, "ca")
        a.set_active(False)
        assert a.__dict__["_im_csi"].supported
        a.set_active(True)
        # the stream is fine afterwards
        jid, _ = modern.account("cb")
        assert await a.blocking.list() == []
        await a.disconnect()
    asyncio.run(main())


@pytest.mark.server
def test_features_arrive_on_live_messages(modern):
    async def main():
        a = await connected(modern, "fa")
        b = await connected(modern, "fb")
        got = []
        a.on_message(lambda m: got.append(m))
        first = epode.Message(a.bound_jid, "Hello wrld", "chat", id="orig-1").add_markable()
        b.send(first)
        b.send(epode.correction(a.bound_jid, "Hello world", first.id))
        b.send(epode.reactions(a.bound_jid, first.id, ["\U0001F44D"]))
        b.send(epode.reply(a.bound_jid, "Indeed", first.id, reply_to=b.bound_jid,
                           quote="Hello world"))
        await until(lambda: len(got) >= 4, what="the messages")
        orig, fix, react, rep = got[:4]
        assert orig.markable and orig.body == "Hello wrld"
        assert fix.replace_id == first.id and fix.same_sender(orig.from_)
        assert react.reactions_to == first.id and react.reactions == ("\U0001F44D",)
        assert rep.reply_to_id == first.id and rep.reply_body == "Indeed"
        await a.disconnect()
        await b.disconnect()
    asyncio.run(main())


def test_reactions_refuse_a_plain_string():
    # a user's epode.reactions(to, id, "ok") sent the reactions "o" and "k"
    with pytest.raises(TypeError):
        epode.reactions("a@example.org", "m1", "ok")
    m = epode.reactions("a@example.org", "m1", ["ok"])
    assert m.to_xml().count("<reaction>") == 1
