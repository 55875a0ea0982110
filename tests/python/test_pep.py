"""The PEP family of the Python binding (epode/_pep.py over
bindings/python/src/pep.c): client.pubsub, .bookmarks, .avatar and
.nickname. Without a server first (made lazily, before connect(), and
usable then), then against a real Prosody with pep and bookmarks (its
own, started once for this module)."""

import asyncio
import hashlib
import uuid

import pytest

import epode
from epode import _epode

from _util import until

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(200))


# ---- without a server ----------------------------------------------------------

def test_helpers_are_lazy_share_one_object_and_wait_for_login():
    c = epode.Client("someone@localhost", "pw")
    assert "_im_pep_raw" not in c.__dict__
    assert isinstance(c.bookmarks, epode.Bookmarks) and c.bookmarks is c.bookmarks
    assert isinstance(c.avatar, epode.Avatar) and isinstance(c.nickname, epode.Nickname)
    assert isinstance(c.pubsub, epode.PubSub)
    raw = c.__dict__["_im_pep_raw"]
    assert c.avatar.raw is raw and c.bookmarks.raw is raw and c.pubsub.raw is raw
    # +notify for each helper went into our caps
    assert "_im_caps" in c.__dict__
    assert c.bookmarks.items == [] and not c.bookmarks.received
    assert c.nickname.own is None and c.avatar.hash is None
    # requests need a login: a clear error at once, nothing pending
    with pytest.raises(epode.Error) as e:
        c.pubsub.publish("n", "<x xmlns='urn:x'/>", callback=lambda r, e: None)
    assert e.value.code == epode.ESTATE
    with pytest.raises(epode.Error):
        c.bookmarks.add("room@muc.example", callback=lambda r, e: None)
    c.avatar.hash = "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"
    assert c.avatar.hash == "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"
    with pytest.raises(epode.Error):
        c.avatar.hash = "not a hash"


def test_bad_arguments_are_type_errors():
    c = epode.Client("someone@localhost", "pw")
    with pytest.raises(TypeError):
        c.pubsub.raw.publish("n", 42)
    with pytest.raises(TypeError):
        c.pubsub.raw.publish("n", None, None, None, {"pubsub#x": object()}, 5)
    with pytest.raises(TypeError):
        c.pubsub.raw.on_event = 3


def test_pubsub_error_carries_both_conditions():
    e = epode.PubSubError("conflict", "no", "precondition_not_met")
    assert isinstance(e, epode.StanzaError)
    assert e.condition == "conflict" and e.pubsub_condition == "precondition_not_met"


# ---- against Prosody (pep, bookmarks) ------------------------------------------------

@pytest.fixture(scope="module")
def pep(tmp_path_factory):
    import xmppservers as xs
    from conftest import Server
    pki = xs.make_pki(str(tmp_path_factory.mktemp("pki-pep")))
    srv = xs.SERVERS["prosody"](pki=pki, graceful_stop=False, modules=("pep", "bookmarks"))
    srv.start()
    try:
        yield Server(srv)
    finally:
        srv.stop()


async def connected(server, prefix, **kw):
    jid, pw = server.account(prefix)
    c = epode.Client(jid + "/py", pw, **server.kwargs(), **kw)
    await c.connect(timeout=20)
    return c


@pytest.mark.server
def test_bookmarks_add_list_remove(pep):
    async def main():
        a = await connected(pep, "bm")
        events = []
        a.bookmarks.on_change(lambda ev, bm: events.append((ev, bm)))
        assert await a.bookmarks.list() == []
        await a.bookmarks.add("Room@" + pep.muc_domain, autojoin=True, nick="alice",
                              name="The Room")
        room = "room@" + pep.muc_domain
        assert a.bookmarks.items == [epode.Bookmark(room, "The Room", "alice", None, True)]
        assert events[-1][0] == "added" and events[-1][1].room == room
        assert await a.bookmarks.list() == a.bookmarks.items
        await a.bookmarks.remove(room)
        assert a.bookmarks.items == []
        with pytest.raises(epode.Error):
            await a.bookmarks.add("not a room", autojoin=False)
        await a.disconnect()
    asyncio.run(main())


def caps_question(client):
    """Gives the client a feature of this run's own, so that its next
    presence carries a caps hash the server has never seen and must ask
    about (disco#info), and returns a list that gets an entry when the
    question arrives (the client answers it at once)."""
    client.disco.add_feature("urn:example:run:" + uuid.uuid4().hex)
    asked = []
    client.add_handler("iq", lambda st: asked.append(1) and None,
                       ns="http://jabber.org/protocol/disco#info", type="get")
    return asked


@pytest.mark.server
def test_bookmarks_first_used_after_connect_and_seen_by_another_resource(pep):
    async def main():
        jid, pw = pep.account("bx")
        a = epode.Client(jid + "/one", pw, **pep.kwargs())
        b = epode.Client(jid + "/two", pw, **pep.kwargs())
        b.bookmarks.autojoin(nick="bee")  # before connect: joins through b.muc at login
        joined = []
        b.muc.on_event(lambda ev: joined.append(ev.room) if ev.type == "joined" else None)
        # b's presence carries a caps hash that the server asks b about
        # (disco#info) before it knows b wants bookmark notifications; a
        # publish that overtakes that round trip notifies nobody (seen
        # once in two runs on a loaded machine): wait for the question.
        asked = caps_question(b)
        await a.connect(timeout=20)
        await b.connect(timeout=20)
        b.send_presence()  # PEP notifies available resources whose caps ask for it
        await until(lambda: b.bookmarks.received and asked, what="b's fetch and caps query")
        await a.bookmarks.add("x@" + pep.muc_domain, autojoin=False)  # first use after login
        await until(lambda: len(b.bookmarks.items) == 1, what="b's notification")
        assert b.bookmarks.items[0].autojoin is False
        await a.bookmarks.add("y@" + pep.muc_domain, autojoin=True)
        await until(lambda: "y@" + pep.muc_domain in joined, what="b's autojoin")
        assert "x@" + pep.muc_domain not in joined
        await a.disconnect()
        await b.disconnect()
    asyncio.run(main())


@pytest.mark.server
def test_pubsub_publish_fetch_retract_and_events(pep):
    async def main():
        a = await connected(pep, "ps")
        seen = []
        a.pubsub.on_event("urn:example:test")(seen.append)
        a.pubsub.notify("urn:example:test")  # NODE+notify in our caps, then be available
        # the server learns that from our caps by asking us (disco#info):
        # a hash new to it (a feature of this run's own) makes it ask, and
        # publishing after the question cannot overtake the answer
        asked = caps_question(a)
        a.send_presence()
        await until(lambda: asked, what="the server's caps question")
        item_id = await a.pubsub.publish("urn:example:test", "<t xmlns='urn:example:test'>one</t>",
                                         id="i1", options={"pubsub#access_model": "presence"})
        assert item_id == "i1"
        items = await a.pubsub.fetch("urn:example:test")
        assert [i.id for i in items] == ["i1"]
        assert items[0].payload.text == "one"
        await until(lambda: seen, what="our own notification")
        assert seen[0].type == "published" and seen[0].node == "urn:example:test"
        assert seen[0].item.id == "i1"
        await a.pubsub.retract("urn:example:test", "i1")
        assert await a.pubsub.fetch("urn:example:test") == []
        with pytest.raises(epode.PubSubError) as e:
            await a.pubsub.fetch("urn:example:absent", id="x")
        assert e.value.condition == "item-not-found"
        await a.pubsub.delete_node("urn:example:test")
        await a.disconnect()
    asyncio.run(main())


@pytest.mark.server
def test_avatar_and_nick_reach_a_contact(pep):
    async def main():
        a = await connected(pep, "aa")
        b = await connected(pep, "ab")
        got_avatar, got_nick = [], []
        b.avatar.on_change(lambda jid, id, source: got_avatar.append((jid, id, source)))
        b.nickname.on_change(lambda jid, nick, source: got_nick.append((jid, nick, source)))
        a.avatar, a.nickname  # our caps carry +notify too
        b.presence.auto_accept = "mutual"
        a.presence.auto_accept = "mutual"
        b.roster, a.roster  # subscription requests reach resources that asked for the roster
        await a.roster.fetch()
        await b.roster.fetch()
        a.send_presence()
        b.send_presence()
        a.presence.subscribe(b.bound_jid.split("/")[0])
        abare = a.bound_jid.split("/")[0]
        await until(lambda: b.roster.get(abare) is not None
                    and b.roster[abare].subscription == "both", 15, "mutual subscription")
        # a's PEP service notifies b once b's presence reached a's account
        # and b's caps are known to it (asked of b, as b's hash is new)
        asked = caps_question(b)
        bbare = b.bound_jid.split("/")[0]
        seen_b = []
        a.add_handler("presence", lambda st: seen_b.append(1) and None
                      if st.from_bare == bbare and st.type == "available" else None)
        a.send_presence()
        b.send_presence()
        await until(lambda: asked and seen_b, 15, "b's caps asked and b's presence at a")
        await a.nickname.set("Alice P")
        aid = await a.avatar.publish(PNG, width=1, height=1)
        assert aid == hashlib.sha1(PNG).hexdigest()
        await until(lambda: any(n == "Alice P" for _, n, s in got_nick if s == "pep"), 10,
                    "the nick notification")
        await until(lambda: any(i == aid for _, i, s in got_avatar if s == "pep"), 10,
                    "the avatar notification")
        assert await b.avatar.fetch(abare) == PNG
        assert await b.avatar.fetch(b.bound_jid.split("/")[0]) is None
        a.send_presence()  # now with the XEP-0153 hash
        await until(lambda: any(s == "vcard" and i == aid for _, i, s in got_avatar), 10,
                    "the hash in presence")
        await a.disconnect()
        await b.disconnect()
    asyncio.run(main())
