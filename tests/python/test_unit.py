"""Unit tests of the Python binding: no server needed."""

import asyncio
import gc
import socket
import threading
import time
import tracemalloc
import weakref

import pytest

import epode
from epode import _epode


# ---- stanzas ---------------------------------------------------------------

def test_message_builder_and_lazy_fields():
    m = epode.Message(to="bob@example.org/r", body="hi <&> there", type="chat", id="m1")
    assert isinstance(m, epode.Stanza)
    assert (m.name, m.ns, m.to, m.type, m.id, m.body) == (
        "message", "jabber:client", "bob@example.org/r", "chat", "m1", "hi <&> there")
    assert m.from_ is None and m.stanza is m
    assert "hi &lt;&amp;&gt; there" in str(m)
    assert epode.Message().type == "normal"  # RFC 6121 default


def test_parse_gives_typed_stanzas_with_attribute_and_child_access():
    iq = epode.Stanza.parse(b"<iq xmlns='jabber:client' type='get' id='v1' from='a@b/c'>"
                            b"<query xmlns='jabber:iq:version'/></iq>")
    assert type(iq) is epode.Iq
    assert iq["type"] == "get" and iq.get("id") == "v1" and iq.from_ == "a@b/c"
    assert iq.get("nope") is None and iq.get("nope", 5) == 5
    with pytest.raises(KeyError):
        iq["nope"]
    q = iq.find("query", "jabber:iq:version")
    assert q is not None and q.ns == "jabber:iq:version" and q.parent.name == "iq"
    assert iq.find("query", "other") is None
    assert len(iq) == 1 and [c.name for c in iq] == ["query"]
    p = epode.Stanza.parse("<presence xmlns='jabber:client'><show>dnd</show>"
                           "<priority>5</priority><status>busy</status></presence>")
    assert type(p) is epode.Presence
    assert (p.type, p.show, p.priority, p.status) == ("available", "dnd", 5, "busy")
    plain = epode.Stanza.parse("<x xmlns='urn:x'/>")
    assert type(plain) is epode.Stanza


def test_building_trees_attributes_and_text():
    st = epode.Stanza("iq", attrs={"type": "set", "id": "x1"})
    q = st.add("query", "jabber:iq:roster")
    item = q.add("item", attrs={"jid": "a@b", "name": "A"})
    item.add("group", text="Friends")
    assert st.find("query").find("item")["jid"] == "a@b"
    item["name"] = "Alice"
    del item["jid"]
    assert item.attrs == {"name": "Alice"}
    with pytest.raises(KeyError):
        del item["jid"]
    item.text = "t"
    assert item.text == "t" and len(item) == 0  # setting text replaces children
    copy = st.copy()
    assert copy == st and copy is not st
    copy["id"] = "other"
    assert copy != st
    other = epode.Stanza("x", "urn:x")
    other.add(st)  # a copy of another tree
    assert other.find("iq").find("query").ns == "jabber:iq:roster"
    assert str(epode.Stanza("a", "urn:a", text="line1\nline2").to_xml(one_line=True)).count("\n") == 0


def test_child_handle_keeps_its_tree_alive():
    def child():
        root = epode.Stanza.parse("<m xmlns='urn:x'><a><b>deep</b></a></m>")
        return root.find("a").find("b")
    b = child()
    gc.collect()
    assert b.text == "deep" and b.root.name == "m"


def test_reply_and_error_reply():
    msg = epode.Stanza.parse("<message xmlns='jabber:client' from='a@b/c' to='me@x/y' "
                             "id='7' type='chat'><body>hi</body></message>")
    r = msg.reply("back")
    assert (r.to, r.from_, r.id, r.body, r.type) == ("a@b/c", "me@x/y", "7", "back", "chat")
    iq = epode.Stanza.parse("<iq xmlns='jabber:client' type='get' id='q' from='a@b/c'>"
                            "<query xmlns='urn:x'/></iq>")
    err = iq.error_reply("item-not-found", text="no such thing")
    assert err.type == "error"
    e = err.error
    assert isinstance(e, epode.StanzaError)
    assert (e.condition, e.type, e.text) == ("item-not-found", "cancel", "no such thing")
    assert e.stanza == err
    assert iq.error is None
    with pytest.raises(ValueError):
        iq.error_reply("no-such-condition")
    with pytest.raises(epode.Error):
        err.error_reply("bad-request")  # never answer an error with an error


@pytest.mark.parametrize("xml, condition", [
    ("<a><b></a>", "not-well-formed"),
    ("<a>\xff", "not-well-formed"),
    ("<!DOCTYPE a><a/>", "restricted-xml"),
    ("<a><!-- c --></a>", "restricted-xml"),
    ("", "not-well-formed"),
])
def test_bad_xml_raises_with_the_condition(xml, condition):
    with pytest.raises(epode.Error) as ei:
        epode.Stanza.parse(xml)
    assert ei.value.condition == condition
    assert ei.value.code in (epode.EXML, epode.ELIMIT, epode.EINVAL)


def test_bad_input_is_refused_clearly():
    with pytest.raises(epode.Error) as ei:
        epode.Message(to="a@@b", body="x")
    assert ei.value.name == "EJID" and ei.value.code == epode.EJID
    with pytest.raises(epode.Error):
        epode.Stanza("not a name")
    with pytest.raises(ValueError):
        epode.Stanza("a", text="nul\0inside")
    with pytest.raises(TypeError):
        epode.Stanza("a", attrs={"x": 1})
    with pytest.raises(epode.Error):
        epode.Stanza("a")["x"] = "\x01"  # not a character XML can carry
    with pytest.raises(ValueError):
        epode.Presence(show="sleeping")
    with pytest.raises(ValueError):
        epode.Presence(priority=200)
    with pytest.raises(ValueError):
        epode.Iq(type="query")
    with pytest.raises(TypeError):
        epode.Stanza.parse(42)


def test_errors_carry_codes_and_names():
    assert epode.EAUTH == -15 and epode.error_codes["ETIMEDOUT"] == epode.ETIMEDOUT
    assert "authentication" in epode.strerror(epode.EAUTH)
    assert issubclass(epode.TimeoutError, TimeoutError)
    assert issubclass(epode.StanzaError, epode.Error)
    e = epode.StanzaError("forbidden", "go away")
    assert (e.condition, e.text) == ("forbidden", "go away")
    plain = epode.Error("x")
    assert plain.code is None and plain.condition is None


def test_many_stanzas_do_not_leak():
    def churn(n):
        for i in range(n):
            m = epode.Stanza.parse("<message xmlns='jabber:client' to='a@b'><body>%d</body>"
                                   "</message>" % i)
            m.reply("r").add("x", "urn:x")
            str(m)
    churn(2000)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    churn(10000)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert grown < 64 * 1024, grown


# ---- the context and its drivers ---------------------------------------------

class RecordingDriver:
    def __init__(self):
        self.watches, self.timers = [], []

    def watch(self, fd, events):
        self.watches.append((fd, events))

    def timer(self, ms):
        self.timers.append(ms)


def test_set_driver_replays_what_epode_watches():
    ctx = epode.Context()
    watched = ctx.watched()
    drv = RecordingDriver()
    ctx.set_driver(drv)
    assert dict(drv.watches) == watched
    assert len(drv.timers) == 1
    assert ctx.driver is drv
    ctx.set_driver(None)
    assert ctx.driver is None


def test_run_times_out_and_stops():
    ctx = epode.Context()
    assert ctx.run(timeout=0.05) is False

    def from_another_thread():
        ctx.stop()
        ctx.wakeup()  # the thread-safe way to interrupt the wait

    t = threading.Timer(0.1, from_another_thread)
    t.start()
    assert ctx.run(timeout=10) is True
    t.join()
    with pytest.raises(ValueError):
        ctx.run(timeout=-1)


def test_run_refuses_a_context_driven_by_a_loop():
    ctx = epode.Context()
    ctx.set_driver(RecordingDriver())
    with pytest.raises(RuntimeError):
        ctx.run(timeout=0.01)


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---- the client, without a server ------------------------------------------------

def test_client_validates_its_arguments():
    with pytest.raises(epode.Error) as ei:
        epode.Client("not a jid@", "pw")
    assert ei.value.name == "EJID"
    with pytest.raises(ValueError):
        epode.Client("a@example.org", "pw", port=70000)
    with pytest.raises(ValueError):
        epode.Client("a@example.org", "pw", direct_tls=True, tls="optional")
    with pytest.raises(ValueError):
        epode.Client("a@example.org", "pw", tls="sometimes")
    c = epode.Client("a@example.org", "pw")
    with pytest.raises(epode.Error) as ei:
        c.send_message("b@example.org", "hi")
    assert ei.value.code == epode.ESTATE
    with pytest.raises(epode.Error) as ei:
        c.send_message("b@@example.org", "hi")
    assert ei.value.code == epode.EJID
    with pytest.raises(ValueError):
        c.send_message("b@example.org", "hi", type="shout")
    with pytest.raises(TypeError):
        c.send_message("b@example.org")


def test_handlers_register_and_remove():
    c = epode.Client("a@example.org", "pw")

    @c.on_message
    def f(msg):
        pass

    @c.on_message(type="chat")
    def g(msg):
        pass

    @c.on_event
    def e(name):
        pass

    assert f is not None and g is not None
    c.remove_handler(f)
    c.remove_handler(e)
    with pytest.raises(epode.Error) as ei:
        c.remove_handler(f)
    assert ei.value.code == epode.ENOTFOUND  # what C and Connection say
    with pytest.raises(TypeError):
        c.connection.add_handler(42, "message")


def test_add_handler_returns_ids_and_remove_handler_takes_them():
    c = epode.Client("a@example.org", "pw")
    f = lambda st: None  # noqa: E731
    ids = [c.add_handler("message", f), c.add_handler("presence", f, type="unavailable"),
           c.add_handler("iq", f, ns="urn:x"), c.add_handler("stanza", f, name="iq"),
           c.add_handler("event", f), c.add_handler("error", f)]
    assert all(isinstance(i, int) for i in ids) and len(set(ids)) == len(ids)
    # the same function twice: two registrations, removed one at a time by id
    again = c.add_handler("message", f)
    c.remove_handler(ids[0])
    with pytest.raises(epode.Error):
        c.remove_handler(ids[0])
    c.remove_handler(f)  # by function: every registration left
    for i in ids[1:] + [again]:
        with pytest.raises(epode.Error):
            c.remove_handler(i)
    with pytest.raises(ValueError):
        c.add_handler("messages", f)
    with pytest.raises(TypeError):
        c.add_handler("event", f, type="chat")
    with pytest.raises(TypeError):
        c.add_handler("message", f, name="iq")
    with pytest.raises(TypeError):
        c.add_handler("message", 42)


def test_event_handlers_run_in_order_and_a_removed_one_stops_at_once():
    port = closed_port()
    c = epode.Client("a@localhost", "pw", server="127.0.0.1", port=port)
    calls = []
    errors = []

    def first(name):
        calls.append("first " + name)
        if name == "connecting":
            c.remove_handler(second_id)  # in the middle of the event

    def third(name):
        calls.append("third " + name)
        raise RuntimeError("third fails")

    c.add_handler("event", first)
    second_id = c.add_handler("event", lambda name: calls.append("second " + name))
    c.on_event(third)
    c.on_event(lambda name: calls.append("fourth " + name))
    c.on_error(errors.append)
    with pytest.raises(epode.Error) as ei:
        c.run(timeout=10)
    assert ei.value.reason == "network"
    assert calls == ["first connecting", "third connecting", "fourth connecting",
                     "first disconnected", "third disconnected", "fourth disconnected"]
    assert len(errors) == 2 and all(isinstance(e, RuntimeError) for e in errors)


def test_connect_to_a_closed_port_fails_with_a_network_error():
    port = closed_port()

    async def main():
        c = epode.Client("a@localhost", "pw", server="127.0.0.1", port=port)
        with pytest.raises(epode.Error) as ei:
            await c.connect(timeout=10)
        assert ei.value.reason == "network"
        assert c.last_error is not None and not c.is_ready

    asyncio.run(main())
    # and again from a second asyncio.run(): the context follows the new loop
    asyncio.run(main())
    # and blocking
    c = epode.Client("a@localhost", "pw", server="127.0.0.1", port=port)
    with pytest.raises(epode.Error) as ei:
        c.run(timeout=10)
    assert ei.value.reason == "network"


def test_connect_timeout_when_the_server_never_answers():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]

    async def main():
        c = epode.Client("a@localhost", "pw", server="127.0.0.1", port=port)
        with pytest.raises(epode.TimeoutError):
            await c.connect(timeout=0.3)
        await asyncio.sleep(0.05)
        assert not c.is_ready

    try:
        asyncio.run(main())
    finally:
        srv.close()


def test_a_forgotten_client_is_freed_once_disconnected():
    port = closed_port()

    async def main():
        c = epode.Client("a@localhost", "pw", server="127.0.0.1", port=port)
        ref = weakref.ref(c)
        with pytest.raises(epode.Error):
            await c.connect(timeout=10)
        del c
        gc.collect()
        return ref

    ref = asyncio.run(main())
    gc.collect()
    assert ref() is None


def test_run_releases_the_gil_while_it_waits():
    """Another thread gets to run Python code while run() waits: it stops
    the run long before run()'s own 10 s limit. With the GIL held in
    poll(2) the thread could not run until then and run() would report
    a timeout."""
    result = {}
    started = threading.Event()

    def runner():
        ctx = epode.Context()
        result["ctx"] = ctx
        started.set()
        result["stopped"] = ctx.run(timeout=10)

    t = threading.Thread(target=runner)
    t.start()
    started.wait(5)
    time.sleep(0.2)  # let run() reach poll()
    total = sum(i * i for i in range(200000))  # pure Python work, needs the GIL
    assert total > 0
    result["ctx"].stop()
    result["ctx"].wakeup()
    t.join(15)
    assert result.get("stopped") is True


# ---- regressions from the review of the binding --------------------------------

def test_attribute_membership_and_bad_conditions_named():
    st = epode.Stanza.parse("<iq xmlns='jabber:client' type='get' id='x'><q xmlns='urn:q'/></iq>")
    assert "id" in st and "to" not in st and 3 not in st
    with pytest.raises(ValueError, match="bogus"):
        st.error_reply(condition="bogus")


def test_nan_and_out_of_range_numbers_are_refused():
    ctx = epode.Context()
    with pytest.raises(ValueError):
        ctx.run(timeout=float("nan"))
    with pytest.raises(ValueError):
        ctx.process(2 ** 33, 1)
    c = epode.Client("a@example.org", "pw")
    with pytest.raises(ValueError):
        c.connection.configure(keepalive=float("inf"))


def test_options_given_alone_and_failing_truth_values():
    # one timeout without the other keeps the other's value
    epode.Client("a@example.org", "pw", connect_timeout=5)
    epode.Client("a@example.org", "pw", login_timeout=5)

    class NoBool:
        def __bool__(self):
            raise ZeroDivisionError("no truth here")

    c = epode.Client("a@example.org", "pw")
    with pytest.raises(ZeroDivisionError):
        c.connection.configure(verify=NoBool())
    with pytest.raises(ValueError):
        c.connection.configure(connect_timeout=0)


def test_waiters_settle_when_a_pending_reconnection_is_stopped():
    port = closed_port()

    async def main():
        c = epode.Client("a@localhost", "pw", server="127.0.0.1", port=port, reconnect=True)
        with pytest.raises(epode.TimeoutError):
            await c.connect(timeout=0.5)  # keeps failing, retried in the background
        # the timeout stopped the retries: nothing is left to wait for
        await asyncio.wait_for(c.wait_disconnected(), 5)
        assert not c.connection.will_reconnect

    asyncio.run(main())


def test_a_restart_from_the_disconnected_handler_keeps_the_connection_alive():
    """connect() again from its own 'disconnected' event, with nothing
    else holding the connection: the new attempt must run to its end."""
    port = closed_port()
    ctx = epode.Context()
    events = []

    def make():
        conn = epode.Connection(ctx, "a@localhost", "pw")
        conn.configure(server="127.0.0.1", port=port)

        def on_event(name):
            events.append(name)
            if name == "disconnected":
                if events.count("disconnected") == 1:
                    conn.connect()
                else:
                    ctx.stop()

        conn.on_event = on_event
        conn.connect()
        return weakref.ref(conn)

    ref = make()
    gc.collect()
    assert ctx.run(timeout=20) is True
    assert events.count("connecting") == 2 and events.count("disconnected") == 2
    gc.collect()
    assert ref() is None  # and freed once really over


def test_built_messages_have_ids_and_reply_body_is_for_replies():
    m = epode.Message("bob@example.org", "hi")
    assert m.id and len(m.id) >= 8
    assert epode.Message("bob@example.org", "hi").id != m.id
    assert epode.Message("bob@example.org", "hi", id="given").id == "given"
    fix = epode.correction("bob@example.org", "fixed", m.id)
    assert fix.id and fix.id != m.id and fix.replace_id == m.id
    got = epode.Stanza.parse(str(fix))
    assert got.reply_to_id is None and got.reply_body is None and got.body == "fixed"
    r = epode.Stanza.parse(str(epode.reply("bob@example.org", "Indeed", m.id, quote="hi")))
    assert r.reply_to_id == m.id and r.reply_body == "Indeed" and r.body != "Indeed"


def test_help_shows_the_send_methods():
    import pydoc
    text = pydoc.render_doc(epode.Client, renderer=pydoc.plaintext)
    for name in ("send(", "send_message(", "send_presence("):
        assert name in text, name


def test_bad_ca_file_is_named_in_the_error(tmp_path):
    # a user saw "ca_file: TLS error (ETLS)" with no path and no reason
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    for path in (tmp_path / "missing.pem", junk):
        with pytest.raises(epode.Error) as ei:
            epode.Client("a@example.org", "pw", ca_file=str(path))
        assert ei.value.code == epode.ETLS
        assert str(path) in str(ei.value)
        assert "no PEM" in str(ei.value)


def test_connect_without_timeout_reports_the_login_timeout():
    # a server that accepts and never speaks: the library's login timeout
    # ends it; connect() without a timeout of its own raised TypeError
    # (formatting None) instead of the library's TimeoutError
    import socket
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]

    async def main():
        c = epode.Client("a@example.org", "pw", server="127.0.0.1", port=port, tls="disabled",
                         connect_timeout=2, login_timeout=0.5)
        with pytest.raises(epode.TimeoutError):
            await c.connect()

    try:
        asyncio.run(main())
    finally:
        srv.close()


def test_a_user_agent_given_wins_over_the_token_files(tmp_path):
    # a user's file ended with a token filed under one id and another id
    # beside it: every later login presented it in vain
    path = tmp_path / "fast"
    old = "11111111-2222-4333-8444-555555555555"
    new = "66666666-7777-4888-9999-aaaaaaaaaaaa"
    path.write_text("user-agent %s\njid a@example.org\nmechanism HT-SHA-256-EXPR\n"
                    "expiry -\ntoken secret\n" % old)
    store = epode.FastTokenFile(str(path))
    assert store.load("a@example.org") is not None
    c = epode.Client("a@example.org", "pw", user_agent=new, fast_token_store=store)
    assert c.user_agent_id == new
    assert store.user_agent_id == new
    assert store.load("a@example.org") is None  # filed under the old id: dropped
    # the same id: the token stays
    path.write_text("user-agent %s\njid a@example.org\nmechanism HT-SHA-256-EXPR\n"
                    "expiry -\ntoken secret\n" % old)
    store = epode.FastTokenFile(str(path))
    epode.Client("a@example.org", "pw", user_agent=old, fast_token_store=store)
    assert store.load("a@example.org") is not None
    with pytest.raises(ValueError):
        store.user_agent_id = "not-a-uuid"
    path.write_text("user-agent nope\n")
    with pytest.raises(ValueError):
        epode.FastTokenFile(str(path))
