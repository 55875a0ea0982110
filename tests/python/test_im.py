"""The IM layer of the Python binding (epode/_im.py over bindings/python/src/im.c):
client.roster, client.presence, client.disco, client.caps and client.muc.
Unit tests first (no server), then against a real Prosody (see conftest.py)."""

import asyncio
import gc
import itertools
import weakref

import pytest

import epode
from epode import _epode

from _util import until

_rooms = itertools.count()




# ---- without a server ----------------------------------------------------------

def test_helpers_are_lazy_kept_and_typed():
    c = epode.Client("someone@localhost", "pw")
    assert "_im_roster" not in c.__dict__
    r, p, d, k, m = c.roster, c.presence, c.disco, c.caps, c.muc
    assert (r, p, d, k, m) == (c.roster, c.presence, c.disco, c.caps, c.muc)
    assert r is c.roster and k.disco is d and r.client is c
    assert isinstance(r, epode.Roster) and isinstance(p, epode.PresenceTracker)
    assert isinstance(d, epode.Disco) and isinstance(k, epode.Caps) and isinstance(m, epode.Muc)
    assert isinstance(r.raw, _epode.Roster) and r.raw.connection is c.connection
    assert len(r) == 0 and list(r) == [] and r.version is None and not r.received
    assert r.get("bob@localhost") is None and "bob@localhost" not in r
    with pytest.raises(KeyError):
        r["bob@localhost"]
    assert p.contacts() == [] and p.best("bob@localhost") is None
    assert p.resources("bob@localhost") == [] and p.get("bob@localhost/x") is None
    assert m.rooms == [] and m.room("r@conference.localhost") is None


def test_disco_and_caps_local_state():
    c = epode.Client("someone@localhost", "pw")
    info = c.disco.local_info()
    assert info.has_identity("client", "bot")
    assert "http://jabber.org/protocol/disco#info" in info.features
    assert c.caps.node == "https://epode.example/python" == epode.Client.caps_node
    ver = c.caps.ver
    assert ver and c.disco.local_info().has_feature("http://jabber.org/protocol/caps")
    c.disco.add_feature("urn:example:one")
    c.disco.add_identity("client", "pc", "Py", lang="en")
    assert c.caps.ver != ver and c.disco.local_info().has_feature("urn:example:one")
    assert ("client", "pc", "Py", "en") in c.disco.local_info().identities
    c.disco.remove_feature("urn:example:one")
    c.disco.remove_identity("client", "pc", lang="en")
    assert c.caps.ver == ver
    with pytest.raises(epode.Error) as ei:
        c.disco.remove_feature("urn:example:one")
    assert ei.value.name == "ENOTFOUND"
    c.disco.add_feature("urn:example:on-node", node="n1")
    assert c.disco.local_info("n1").features == {"urn:example:on-node"}
    assert c.disco.raw.build_info().name == "query"
    form = epode.Stanza.parse(
        "<x xmlns='jabber:x:data' type='result'>"
        "<field var='FORM_TYPE' type='hidden'><value>urn:example:form</value></field>"
        "<field var='os'><value>Linux</value></field></x>")
    c.disco.add_form(form)
    f = c.disco.local_info().forms[0]
    assert f.form_type == "urn:example:form" and f.get("os") == ("Linux",)
    c.disco.add_item("pubsub.localhost", "items", "Things")
    assert c.caps.supports("x@localhost/r", "urn:example:one") is None
    assert c.caps.info("x@localhost/r") is None
    # another node, given before first use
    c2 = epode.Client("other@localhost", "pw")
    c2.caps_node = "https://example.org/other"
    assert c2.caps.node == "https://example.org/other"


def test_presence_auto_accept_values():
    p = epode.Client("someone@localhost", "pw").presence
    assert p.auto_accept is False
    p.auto_accept = True
    assert p.auto_accept is True and p.raw.auto_accept == _epode.AUTO_ACCEPT_ON
    p.auto_accept = "mutual"
    assert p.auto_accept == "mutual"
    p.auto_accept = False
    assert p.raw.auto_accept == _epode.AUTO_ACCEPT_OFF
    with pytest.raises(ValueError):
        p.auto_accept = "sometimes"


def test_errors_before_connecting():
    c = epode.Client("someone@localhost", "pw")
    with pytest.raises(epode.Error) as ei:
        c.roster.add("bob@localhost")
    assert ei.value.name == "ESTATE"
    with pytest.raises(epode.Error) as ei:
        c.roster.fetch()
    assert ei.value.name == "ESTATE"
    with pytest.raises(TypeError):
        c.roster.raw.add("bob@localhost", None, [1])
    with pytest.raises(epode.Error) as ei:
        c.presence.subscribe("not a jid@@")
    assert ei.value.name == "EJID"
    with pytest.raises(RuntimeError):
        c.disco.info("localhost")  # no loop, no callback
    for bad in ("bad jid@@", "conference.localhost", "room@conference.localhost/nick"):
        with pytest.raises(epode.Error) as ei:
            c.muc.join(bad, "nick")
        assert ei.value.name == "EJID"
    with pytest.raises(epode.Error) as ei:
        c.muc.send("room@conference.localhost", "hi")
    assert ei.value.name == "ENOTFOUND"

    async def main():
        with pytest.raises(epode.Error) as ei:
            c.disco.info("localhost")
        assert ei.value.name == "ESTATE"
        # a join before connecting waits for login; a leave drops it, failing the wait
        fut = c.muc.join("Room@Conference.localhost", "nick")
        assert [r.jid for r in c.muc.rooms] == ["room@conference.localhost"]
        assert not c.muc.room("room@conference.localhost").joined
        with pytest.raises(epode.Error) as ei:
            c.muc.join("room@conference.localhost", "again")
        assert ei.value.name == "ESTATE"
        assert c.muc.leave("room@conference.localhost") is False
        with pytest.raises(epode.Error) as ei:
            await fut
        assert ei.value.code == epode.ECANCELED
        assert c.muc.rooms == []

    asyncio.run(main())


def test_helpers_hold_the_connection_and_are_collected():
    c = epode.Client("someone@localhost", "pw")
    raws = [weakref.ref(h.raw) for h in (c.roster, c.presence, c.disco, c.caps, c.muc)]
    conn = weakref.ref(c.connection)
    del c
    gc.collect()
    assert conn() is None and all(r() is None for r in raws)
    # a low-level helper keeps its connection (and a Caps its Disco) alive
    connection = _epode.Connection(epode.default_context(), "someone@localhost")
    disco = _epode.Disco(connection)
    caps = _epode.Caps(disco, "https://example.org/x")
    refs = [weakref.ref(o) for o in (connection, disco)]
    del connection, disco
    gc.collect()
    assert caps.disco.connection is caps.connection and all(r() is not None for r in refs)
    del caps
    gc.collect()
    assert all(r() is None for r in refs)


# ---- against Prosody ---------------------------------------------------------

async def connected(prosody, prefix, resource=None, setup=None):
    """A connected client on a fresh account; setup(client) runs before connect()."""
    jid, pw = prosody.account(prefix)
    c = epode.Client(jid + ("/" + resource if resource else ""), pw, **prosody.kwargs())
    if setup:
        setup(c)
    await c.connect(timeout=20)
    return c


@pytest.mark.server
def test_roster_add_remove_and_on_change(prosody):
    async def main():
        a = await connected(prosody, "ra")
        bob, _ = prosody.account("rb")
        events = []
        a.roster.on_change(lambda ev, item: events.append((ev, item)))
        assert await a.roster.fetch() is a.roster
        assert a.roster.received and len(a.roster) == 0
        assert events[-1] == ("received", None)

        assert await a.roster.add(bob, "Bob", ["Friends", "Work"]) is None
        await until(lambda: bob in a.roster, what="the roster push")
        item = a.roster[bob]
        assert item == epode.RosterItem(bob, "Bob", "none", False, ("Friends", "Work"))
        assert ("added", item) in events
        assert list(a.roster) == [item] and len(a.roster) == 1
        assert a.roster.get(bob.upper()) == item  # normalized comparison

        await a.roster.add(bob, groups="Family")  # a str is one group; updates the item
        await until(lambda: a.roster[bob].groups == ("Family",), what="the update")
        assert a.roster[bob].name is None and events[-1][0] == "updated"

        assert await a.roster.remove(bob) is None
        await until(lambda: bob not in a.roster, what="the removal")
        ev, gone = [e for e in events if e[0] == "removed"][-1]
        assert gone.jid == bob and gone.subscription == "remove"
        assert len(a.roster) == 0

        with pytest.raises(epode.StanzaError) as ei:
            await a.roster.remove("nobody-here@" + prosody.domain)
        assert ei.value.condition == "item-not-found"
        with pytest.raises(epode.Error) as ei:
            a.roster.add("not a jid@@")
        assert ei.value.name == "EJID"
        await a.disconnect()
        assert not a.roster.received

    asyncio.run(main())


@pytest.mark.server
def test_presence_tracker_best_resource(prosody):
    async def main():
        a = await connected(prosody, "pa", setup=lambda c: c.presence)
        changes = []
        a.presence.on_change(lambda ch, info: changes.append((ch, info.jid, info.show)))
        bjid, bpw = prosody.account("pb")
        b1 = epode.Client(bjid + "/one", bpw, **prosody.kwargs())
        b2 = epode.Client(bjid + "/two", bpw, **prosody.kwargs())
        await asyncio.gather(b1.connect(timeout=20), b2.connect(timeout=20))
        # directed presence: no subscription needed
        b1.send_presence(show="chat", status="low", priority=1, to=a.bound_jid)
        b2.send_presence(show="away", status="high", priority=5, to=a.bound_jid)
        await until(lambda: len(a.presence.resources(bjid)) == 2, what="both resources")
        best = a.presence.best(bjid)
        assert (best.resource, best.show, best.status, best.priority) == ("two", "away", "high", 5)
        assert best.jid == bjid + "/two" and best.bare == bjid and best.error is None
        assert best.stanza.type == "available"
        assert sorted(i.resource for i in a.presence.resources(bjid)) == ["one", "two"]
        assert bjid in a.presence.contacts() and a.presence.is_online(bjid)
        assert a.presence.get(bjid + "/one").show == "chat"
        assert ("available", bjid + "/one", "chat") in changes

        b2.send_presence(show="unavailable", to=a.bound_jid)
        await until(lambda: a.presence.best(bjid).resource == "one", what="the departure")
        assert ("unavailable", bjid + "/two", "unavailable") in changes
        b1.send_presence(show="dnd", priority=1, to=a.bound_jid)
        await until(lambda: a.presence.best(bjid).show == "dnd", what="the change")
        assert changes[-1] == ("changed", bjid + "/one", "dnd")
        for c in (a, b1, b2):
            await c.disconnect()
        assert a.presence.contacts() == []  # emptied with the connection

    asyncio.run(main())


@pytest.mark.server
def test_subscription_approved_by_callback(prosody):
    async def main():
        def setup(c):
            c.presence
            c.roster
        a = await connected(prosody, "sa", setup=setup)
        b = await connected(prosody, "sb", "bot", setup=setup)
        abare, bbare = a.jid, b.jid.split("/")[0]
        asked, told = [], []

        @b.presence.on_subscription
        def decide(jid, kind, status):
            asked.append((jid, kind, status))
            return jid == abare

        a.presence.on_subscription(lambda jid, kind, status: told.append((jid, kind)))
        await asyncio.gather(a.roster.fetch(), b.roster.fetch())
        a.send_presence()
        b.send_presence(status="bot here", priority=3)
        a.presence.subscribe(bbare, "let me see")
        await until(lambda: bbare in a.roster and a.roster[bbare].subscription == "to",
                    what="a's roster to show the subscription")
        await until(lambda: abare in b.roster and b.roster[abare].subscription == "from",
                    what="b's roster to show a")
        assert asked[0] == (abare, "request", "let me see")
        await until(lambda: (bbare, "approved") in told, what="the approval")
        # subscribed: b's presence now reaches a through the server
        await until(lambda: a.presence.best(bbare) is not None, what="b's presence")
        assert a.presence.best(bbare).status == "bot here"
        await a.disconnect()
        await b.disconnect()

    asyncio.run(main())


@pytest.mark.server
def test_subscription_refused_and_async_decision(prosody):
    async def main():
        setup = lambda c: (c.presence, c.roster)  # noqa: E731
        a = await connected(prosody, "sr", setup=setup)
        b = await connected(prosody, "ss", setup=setup)
        c = await connected(prosody, "st", setup=setup)
        bbare = b.jid

        @b.presence.on_subscription
        async def decide(jid, kind, status):
            await asyncio.sleep(0.01)
            return jid == c.jid

        told = []
        a.presence.on_subscription(lambda jid, kind, status: told.append((jid, kind)))
        c.presence.on_subscription(lambda jid, kind, status: told.append((jid, kind)))
        for x in (a, b, c):
            await x.roster.fetch()
            x.send_presence()
        a.presence.subscribe(bbare)
        c.presence.subscribe(bbare)
        await until(lambda: (bbare, "revoked") in told and (bbare, "approved") in told,
                    what="both answers")
        await until(lambda: bbare in c.roster and c.roster[bbare].subscription == "to")
        for x in (a, b, c):
            await x.disconnect()

    asyncio.run(main())


@pytest.mark.server
def test_disco_server_and_peer(prosody):
    async def main():
        def setup(c):
            c.disco.add_feature("urn:example:epode-test")
            c.disco.add_identity("client", "bot", "pytest bot")
            c.disco.add_item("pubsub." + prosody.domain, "news", "News")
        a = await connected(prosody, "da")
        b = await connected(prosody, "db", "py", setup=setup)
        info = await a.disco.info(prosody.domain)
        assert isinstance(info, epode.DiscoInfo) and isinstance(info.features, frozenset)
        assert info.has_identity("server", "im")
        assert info.has_feature("http://jabber.org/protocol/disco#info")
        assert info.has_feature("urn:xmpp:ping")
        items = await a.disco.items(prosody.domain)
        assert all(isinstance(i, epode.DiscoItem) for i in items)
        assert prosody.muc_domain in [i.jid for i in items]

        peer = await a.disco.info(b.bound_jid)
        assert peer.has_feature("urn:example:epode-test")
        assert ("client", "bot", "pytest bot", None) in peer.identities
        assert (await a.disco.items(b.bound_jid)) == [
            epode.DiscoItem("pubsub." + prosody.domain, "news", "News")]
        with pytest.raises(epode.StanzaError) as ei:
            await a.disco.info(b.bound_jid, "no-such-node")
        assert ei.value.condition == "item-not-found"
        with pytest.raises(epode.Error) as ei:
            a.disco.info("bad jid@@")
        assert ei.value.name == "EJID"
        # a cancelled wait forgets the query
        fut = a.disco.info(prosody.domain)
        fut.cancel()
        await asyncio.sleep(0.2)
        assert not a.disco.raw.cancel(1 << 30)
        await a.disconnect()
        await b.disconnect()

    asyncio.run(main())


@pytest.mark.server
def test_caps_learned_from_presence(prosody):
    async def main():
        def setup_b(c):
            c.caps_node = "https://example.org/pytest-bot"
            c.disco.add_feature("urn:example:caps-test")
            c.caps
        a = await connected(prosody, "ca", setup=lambda c: c.caps)
        b = await connected(prosody, "cb", "bot", setup=setup_b)
        seen = []
        a.caps.on_change(lambda jid, info: seen.append((jid, info)))
        assert a.caps.supports(b.bound_jid, "urn:example:caps-test") is None
        b.send_presence(to=a.bound_jid)
        await until(lambda: a.caps.supports(b.bound_jid, "urn:example:caps-test") is not None,
                    what="b's capabilities")
        assert a.caps.supports(b.bound_jid, "urn:example:caps-test") is True
        assert a.caps.supports(b.bound_jid, "urn:example:not-there") is False
        info = a.caps.info(b.bound_jid)
        assert info.has_feature("http://jabber.org/protocol/caps")
        assert seen and seen[-1][0] == b.bound_jid and seen[-1][1] == info
        assert a.caps.cache_count >= 1
        # a new feature changes b's ver (epode re-sends only a broadcast
        # presence by itself; this one was directed, so send it again)
        ver = b.caps.ver
        b.disco.add_feature("urn:example:later")
        assert b.caps.ver != ver
        b.send_presence(to=a.bound_jid)
        await until(lambda: a.caps.supports(b.bound_jid, "urn:example:later") is True,
                    what="the new capabilities")
        b.send_presence(show="unavailable", to=a.bound_jid)
        await until(lambda: a.caps.info(b.bound_jid) is None, what="the caps to go")
        assert seen[-1] == (b.bound_jid, None)
        await a.disconnect()
        await b.disconnect()

    asyncio.run(main())


@pytest.mark.server
def test_muc_two_clients_talk(prosody):
    async def main():
        a = await connected(prosody, "ma")
        b = await connected(prosody, "mb")
        room = "pyroom%d@%s" % (next(_rooms), prosody.muc_domain)
        a_msgs, b_private, a_events = asyncio.Queue(), asyncio.Queue(), []
        a.muc.on_message(a_msgs.put_nowait)
        a.muc.on_event(lambda ev: a_events.append(ev))
        b.muc.on_private(b_private.put_nowait)

        joined = await a.muc.join(room, "alice", history=0)
        assert isinstance(joined, epode.Room) and joined.joined and joined.nick == "alice"
        assert joined.jid == room
        created = [e for e in a_events if e.type == "joined"][0]
        assert created.created and created.is_self
        assert joined.occupant("alice").affiliation == "owner"

        rb = await b.muc.join(room.upper(), "bob")
        assert rb.jid == room and {o.nick for o in rb.occupants} == {"alice", "bob"}
        await until(lambda: a.muc.room(room).occupant("bob") is not None, what="bob's arrival")
        assert any(e.type == "occupant_joined" and e.nick == "bob" for e in a_events)

        b.muc.send(room, "hello room")
        while True:
            ev = await asyncio.wait_for(a_msgs.get(), 10)
            if not ev.is_self:
                break
        assert (ev.type, ev.room, ev.nick, ev.body, ev.history) == (
            "message", room, "bob", "hello room", False)
        assert ev.stanza.type == "groupchat" and ev.stanza.body == "hello room"

        a.muc.send_private(room, "bob", "psst")
        ev = await asyncio.wait_for(b_private.get(), 10)
        assert (ev.nick, ev.body) == ("alice", "psst")

        a.muc.set_subject(room, "Testing epode")
        await until(lambda: b.muc.room(room).subject == "Testing epode", what="the subject")
        assert [r.jid for r in a.muc.rooms] == [room]

        # the same nick again, from a third account: a conflict
        c = await connected(prosody, "mc")
        with pytest.raises(epode.StanzaError) as ei:
            await c.muc.join(room, "bob")
        assert ei.value.condition == "conflict"
        assert c.muc.rooms == []
        # unless retries are allowed
        c.muc.set_nick_retry(2)
        rc = await c.muc.join(room, "bob")
        assert rc.nick == "bob_"

        assert b.muc.leave(room, "bye") is True
        await until(lambda: b.muc.room(room) is None, what="bob to leave")
        await until(lambda: any(e.type == "occupant_left" and e.nick == "bob"
                                for e in a_events), what="alice to see bob leave")
        with pytest.raises(epode.Error) as ei:
            b.muc.send(room, "still here?")
        assert ei.value.name == "ENOTFOUND"
        for x in (a, b, c):
            await x.disconnect()

    asyncio.run(main())


@pytest.mark.server
def test_muc_history_flag(prosody):
    async def main():
        a = await connected(prosody, "ha")
        b = await connected(prosody, "hb")
        room = "pyhist%d@%s" % (next(_rooms), prosody.muc_domain)
        await a.muc.join(room, "alice")
        a.muc.send(room, "said before")
        await asyncio.sleep(0.3)
        got = asyncio.Queue()
        b.muc.on_message(got.put_nowait)
        await b.muc.join(room, "bob")
        ev = await asyncio.wait_for(got.get(), 10)
        assert (ev.nick, ev.body, ev.history) == ("alice", "said before", True)
        await a.disconnect()
        await b.disconnect()

    asyncio.run(main())


@pytest.mark.server
def test_a_raising_roster_callback_is_reported(prosody):
    async def main():
        a = await connected(prosody, "ea")
        bob, _ = prosody.account("eb")
        errors, seen = [], []
        a.on_error(errors.append)

        @a.roster.on_change
        def broken(event, item):
            raise ZeroDivisionError("bug in the roster callback")

        @a.roster.on_change
        async def fine(event, item):  # runs even though the first one raised
            seen.append(event)

        # a callback raising straight through the C layer is reported too
        raw = _epode.Roster(a.connection)
        raw.on_event = lambda event, item: [][1]

        await a.roster.fetch()
        await a.roster.add(bob)
        await until(lambda: bob in a.roster and "added" in seen, what="the push")
        assert any(isinstance(e, ZeroDivisionError) for e in errors)
        await until(lambda: any(isinstance(e, IndexError) for e in errors),
                    what="the raw callback's error")
        del raw
        gc.collect()
        # still working
        assert a.is_ready
        assert (await a.disco.info(prosody.domain)).has_feature("urn:xmpp:ping")
        await a.roster.remove(bob)
        await until(lambda: bob not in a.roster)
        await a.disconnect()

    asyncio.run(main())


@pytest.mark.server
def test_blocking_run_with_callbacks(prosody):
    jid, pw = prosody.account("bl")
    c = epode.Client(jid, pw, **prosody.kwargs())
    results = {}
    room = "pyblock%d@%s" % (next(_rooms), prosody.muc_domain)

    def got_info(info, error):
        results["info"] = (info, error)
        c.muc.join(room, "blocker")  # no loop: fire and forget, watch the events

    @c.muc.on_event
    def on_muc(ev):
        if ev.type == "joined":
            results["joined"] = ev.room
            c.roster.add("friend@" + prosody.domain,
                         callback=lambda r, e: (results.__setitem__("added", (r, e)),
                                                c.stop()))

    @c.on_event
    def on_event(name):
        if name == "ready":
            c.disco.info(prosody.domain, callback=got_info)

    c.run(timeout=30)
    info, error = results["info"]
    assert error is None and info.has_feature("urn:xmpp:ping")
    assert results["joined"] == room and results["added"] == (None, None)


@pytest.mark.server
def test_repeated_use_releases_everything(prosody):
    """Clients with every helper, connected, used and dropped: all of it is
    collected (the C side is checked under valgrind separately)."""
    async def once(i):
        refs = []

        def setup(c):
            refs.extend(weakref.ref(h.raw) for h in (c.roster, c.presence, c.caps, c.muc))
        a = await connected(prosody, "la", setup=setup)
        b = await connected(prosody, "lb", setup=setup)
        room = "pyloop%d@%s" % (next(_rooms), prosody.muc_domain)
        await a.roster.add(b.jid)
        await a.muc.join(room, "a")
        a.send_presence()
        b.send_presence(to=a.bound_jid)
        await a.disco.info(b.bound_jid)
        # answered, or cut by the disconnection: either way they settle
        pending = [a.disco.info(prosody.domain), a.roster.add("late@" + prosody.domain)]
        await a.disconnect()
        for r in await asyncio.gather(*pending, return_exceptions=True):
            assert r is None or isinstance(r, (epode.DiscoInfo, epode.Error))
        await b.disconnect()
        refs.append(weakref.ref(a))
        return refs

    async def main():
        refs = []
        for i in range(5):
            refs += await once(i)
        gc.collect()
        return refs

    refs = asyncio.run(main())
    gc.collect()
    assert [r for r in refs if r() is not None] == []


@pytest.mark.server
def test_helper_lifetime_edges(prosody):
    """Freeing a helper with requests pending, or from inside its own
    callback, is safe (epode forbids the latter: the binding defers it)."""
    async def main():
        a = await connected(prosody, "le")
        got = []
        # a roster freed with a request pending: the callback gets ECANCELED
        raw = _epode.Roster(a.connection)
        raw.add("someone@" + prosody.domain, None, (), lambda *r: got.append(r))
        del raw
        gc.collect()
        assert got == [(epode.ECANCELED, None, None)]
        # a disco freed with a query pending: dropped without a call
        d = _epode.Disco(a.connection)
        d.get_info(prosody.domain, None, lambda *r: got.append(r))
        del d
        gc.collect()
        await asyncio.sleep(0.3)
        assert len(got) == 1

        # the last reference dropped inside the helper's own callback
        holder = {}

        def drop_roster(event, item):
            holder.pop("roster", None)
            got.append(event)

        def drop_muc(ev):
            if ev[0] == "joined":
                holder.pop("muc", None)
                got.append("joined")
        holder["roster"] = _epode.Roster(a.connection)
        holder["roster"].on_event = drop_roster
        holder["muc"] = _epode.Muc(a.connection)
        holder["muc"].on_event = drop_muc
        refs = [weakref.ref(o) for o in holder.values()]
        holder["roster"].fetch()
        holder["muc"].join("pyedge%d@%s" % (next(_rooms), prosody.muc_domain), "edge")
        await until(lambda: all(r() is None for r in refs), what="both helpers to go")
        assert "received" in got and "joined" in got
        # the client is fine
        assert (await a.disco.info(prosody.domain)).has_feature("urn:xmpp:ping")
        await a.disconnect()

    asyncio.run(main())


# ---- regressions from the review of the IM wrappers ------------------------------

def _closed_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_bad_numbers_are_refused():
    c = epode.Client("a@example.org", "pw")
    with pytest.raises(ValueError):
        c.presence.auto_accept = 2 ** 32 + 1
    with pytest.raises(ValueError):
        c.muc.set_nick_retry(-1)
    with pytest.raises(ValueError):
        c.muc.set_nick_retry(10 ** 12)


def test_a_join_that_fails_with_the_connection_is_forgotten():
    """Joined before connecting; the connection fails: the join fails and
    epode forgets the room (it would otherwise be joined at the next
    login although the caller was told it failed)."""
    port = _closed_port()

    async def main():
        c = epode.Client("a@localhost", "pw", server="127.0.0.1", port=port)
        fut = c.muc.join("room@conference.localhost", "me")
        with pytest.raises(epode.Error):
            await c.connect(timeout=10)
        with pytest.raises(epode.Error) as ei:
            await asyncio.wait_for(fut, 5)
        assert ei.value.code == epode.ECANCELED
        assert c.muc.rooms == []
        c.muc.join("room@conference.localhost", "me").cancel()  # joining again is allowed

    asyncio.run(main())


def test_a_join_waiting_through_a_reconnection_pause_fails_on_disconnect():
    port = _closed_port()

    async def main():
        c = epode.Client("a@localhost", "pw", server="127.0.0.1", port=port, reconnect=True)
        fut = c.muc.join("room@conference.localhost", "me")
        login = asyncio.ensure_future(c.connect())  # keeps retrying the closed port
        await until(lambda: c.connection.will_reconnect, what="a reconnection pause")
        await asyncio.wait_for(c.disconnect(), 5)
        with pytest.raises(epode.Error) as ei:
            await asyncio.wait_for(fut, 5)
        assert ei.value.code == epode.ECANCELED
        with pytest.raises(epode.Error):
            await asyncio.wait_for(login, 5)  # the login waiter is settled too

    asyncio.run(main())


@pytest.mark.server
def test_cancelling_a_join_stops_it(prosody):
    async def main():
        c = await connected(prosody, "cj")
        room = "cancel%d@%s" % (next(_rooms), prosody.muc_domain)
        c.muc.join(room, "me").cancel()  # as a timeout around it would
        await asyncio.sleep(0.5)
        assert c.muc.room(room) is None  # the join did not go on behind our back
        r = await asyncio.wait_for(c.muc.join(room, "me"), 10)  # and may be joined again
        assert r.joined
        await c.disconnect()

    asyncio.run(main())


@pytest.mark.server
def test_a_roster_collected_with_a_request_pending(prosody):
    """A low-level roster in a garbage cycle with an add() pending: its
    callback is answered (ECANCELED) before the cycle is torn down."""
    async def main():
        c = await connected(prosody, "gc")
        answers = []

        def make():
            def cb(*r):
                answers.append(r[0])
            raw = _epode.Roster(c.connection)
            cb.raw = raw  # raw -> request -> cb -> cb.__dict__ -> raw
            raw.add("someone@" + prosody.domain, None, (), cb)

        make()
        gc.collect()
        assert answers == [epode.ECANCELED]
        await c.disconnect()

    asyncio.run(main())


@pytest.mark.server
def test_helpers_first_used_after_connect_catch_up(prosody):
    # No ordering rule: client.roster and client.presence touched only
    # once logged in still get the roster, and the presence that came first.
    async def main():
        ajid, apw = prosody.account("late-a")
        bjid, bpw = prosody.account("late-b")
        first = epode.Client(ajid + "/first", apw, **prosody.kwargs())
        await first.connect(timeout=20)
        await first.roster.add(bjid, "Bob")
        await first.disconnect()

        a = epode.Client(ajid + "/late", apw, **prosody.kwargs())
        seen = []
        a.on_presence(lambda p: seen.append(p.from_))
        await a.connect(timeout=20)
        assert "_im_roster" not in a.__dict__ and "_im_presence" not in a.__dict__
        b = epode.Client(bjid + "/r", bpw, **prosody.kwargs())
        await b.connect(timeout=20)
        b.send_presence(show="away", to=a.bound_jid)
        await until(lambda: bjid + "/r" in seen, what="bob's presence (raw)")

        roster = a.roster  # first use, logged in: fetched at once
        await until(lambda: roster.received, what="the roster")
        assert roster[bjid].name == "Bob"
        best = a.presence.best(bjid)  # first use after the presence arrived
        assert best is not None and best.show == "away" and best.resource == "r"
        for c in (a, b):
            await c.disconnect()

    asyncio.run(main())
