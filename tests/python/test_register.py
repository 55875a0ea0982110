"""In-band registration (XEP-0077) from Python: epode.register(),
client.change_password(), client.unregister(). Unit tests on the form
handling first, then against a Prosody of this module's own with
registration open (the session's shared one keeps it closed)."""

import asyncio
import itertools

import pytest

import epode
from epode import _register

_names = itertools.count()


# ---- without a server ----------------------------------------------------------

def test_legacy_fields_become_a_form():
    iq = epode.Stanza.parse("<iq xmlns='jabber:client' type='result' id='1'>"
                            "<query xmlns='jabber:iq:register'><instructions>Pick</instructions>"
                            "<username/><password/><email/><key>k</key><bogus/></query></iq>")
    form = _register._parse(iq)
    assert not form.data_form
    assert [f.var for f in form.fields] == ["username", "password", "email", "key"]
    assert form.instructions == "Pick"
    assert form.missing() == ["username", "password", "email"]
    form["username"] = "u"
    form["password"] = "p"
    assert form.missing() == ["email"]
    with pytest.raises(KeyError):
        form["nope"] = "x"
    with pytest.raises(TypeError):
        form["email"] = 3
    form["email"] = "e@example.org"
    _, q = _register._query("set")
    _register._fill_query(q, form)
    assert q.find_text("username") == "u" and q.find_text("key") == "k"
    assert q.find("bogus") is None


def test_data_form_with_captcha():
    iq = epode.Stanza.parse(
        "<iq xmlns='jabber:client' type='result' id='1'><query xmlns='jabber:iq:register'>"
        "<x xmlns='jabber:x:data' type='form'><title>T</title>"
        "<field type='hidden' var='FORM_TYPE'><value>urn:xmpp:captcha</value></field>"
        "<field type='fixed'><value>Hello</value></field>"
        "<field var='username'><required/></field>"
        "<field var='password' type='text-private'><required/></field>"
        "<field var='ocr' label='Text'><required/><media xmlns='urn:xmpp:media-element'>"
        "<uri type='image/png'>cid:x@bob.xmpp.org</uri></media></field>"
        "<field var='lang' type='list-single'><option label='E'><value>en</value></option></field>"
        "</x></query><data xmlns='urn:xmpp:bob' cid='x@bob.xmpp.org'>AAAA</data></iq>")
    form = _register._parse(iq)
    assert form.data_form and form.form_type == "urn:xmpp:captcha" and form.title == "T"
    ocr = form.field("ocr")
    assert ocr.label == "Text" and ocr.media is not None
    assert ocr.media.find_text("uri") == "cid:x@bob.xmpp.org"
    assert form.field("lang").options == [("E", "en")]
    assert form.answer.find("data", "urn:xmpp:bob").text == "AAAA"
    form["username"], form["password"], form["ocr"] = "u", "p", "abc"
    _, q = _register._query("set")
    _register._fill_query(q, form)
    x = q.find("x", "jabber:x:data")
    assert x["type"] == "submit"
    fields = {f["var"]: [v.text for v in f.find_all("value")] for f in x.find_all("field")}
    assert fields == {"FORM_TYPE": ["urn:xmpp:captcha"], "username": ["u"], "password": ["p"],
                      "ocr": ["abc"], "lang": []}
    assert "label" not in x.to_xml() and "Hello" not in x.to_xml()


def test_hostile_forms():
    bad = [
        "<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='form'>"
        "<field type='text-single'/></x></query>",
        "<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='form'>"
        "<field var='a'/><field var='a'/></x></query>",
        "<nothing xmlns='urn:x'/>",
    ]
    for body in bad:
        iq = epode.Stanza.parse("<iq xmlns='jabber:client' type='result' id='1'>%s</iq>" % body)
        with pytest.raises(epode.Error) as ei:
            _register._parse(iq)
        assert ei.value.name == "EPROTOCOL"
    big = "".join("<field var='f%d'/>" % i for i in range(10000))
    iq = epode.Stanza.parse("<iq xmlns='jabber:client' type='result' id='1'><query xmlns='"
                            "jabber:iq:register'><x xmlns='jabber:x:data' type='form'>%s</x>"
                            "</query></iq>" % big)
    assert len(_register._parse(iq).fields) == 10000


def test_register_needs_a_username():
    with pytest.raises(ValueError):
        asyncio.run(epode.register("example.org", "pw"))


def test_refusals_read_as_conditions():
    e = _register._refusal(epode.StanzaError("conflict"))
    assert e.condition == "conflict" and str(e) == "conflict: already registered"
    e = _register._refusal(epode.StanzaError("not-acceptable", "weak password"))
    assert str(e) == "not-acceptable: weak password"


# ---- against Prosody -------------------------------------------------------------

@pytest.fixture(scope="module")
def open_prosody(tmp_path_factory):
    import xmppservers as xs
    from conftest import Server
    pki = xs.make_pki(str(tmp_path_factory.mktemp("pki-reg")))
    srv = xs.SERVERS["prosody"](pki=pki, graceful_stop=False, allow_registration=True, users={})
    srv.start()
    try:
        yield Server(srv)
    finally:
        srv.stop()


def fresh(server):
    name = "pyreg%d" % next(_names)
    return "%s@%s" % (name, server.domain), "pw-%s-\u00e4" % name


@pytest.mark.server
def test_register_login_change_remove(open_prosody):
    srv = open_prosody

    async def main():
        jid, pw = fresh(srv)
        await epode.register(jid, pw, server=srv.host, port=srv.port, ca_file=srv.ca_file)
        with pytest.raises(epode.StanzaError) as ei:
            await epode.register(jid, pw, **srv.kwargs())
        assert ei.value.condition == "conflict"
        assert str(ei.value) == "conflict: already registered" or \
            str(ei.value).startswith("conflict: ")

        c = epode.Client(jid, pw, **srv.kwargs())
        await c.connect(timeout=20)
        assert c.bound_jid.startswith(jid + "/")
        await c.disconnect()

        # login=True: registered, then logged in on a new stream
        jid2, pw2 = fresh(srv)
        c2 = await epode.register(jid2, pw2, login=True, **srv.kwargs())
        assert c2.is_ready and c2.bound_jid.startswith(jid2 + "/")
        await c2.unregister()
        await c2.wait_disconnected()

        c = epode.Client(jid, pw, **srv.kwargs())
        await c.connect(timeout=20)
        await c.change_password("new-" + pw)
        await c.disconnect()

        old = epode.Client(jid, pw, **srv.kwargs())
        with pytest.raises(epode.Error) as ei:
            await old.connect(timeout=20)
        assert ei.value.reason == "auth"

        c = epode.Client(jid, "new-" + pw, **srv.kwargs())
        await c.connect(timeout=20)
        await c.unregister()
        await c.wait_disconnected()

        gone = epode.Client(jid, "new-" + pw, **srv.kwargs())
        with pytest.raises(epode.Error) as ei:
            await gone.connect(timeout=20)
        assert ei.value.reason == "auth"

    asyncio.run(main())


@pytest.mark.server
def test_registration_closed_on_the_shared_server(prosody):
    async def main():
        jid, pw = fresh(prosody)
        with pytest.raises(epode.StanzaError) as ei:
            await epode.register(jid, pw, **prosody.kwargs())
        assert ei.value.condition in ("not-allowed", "service-unavailable", "forbidden")

    asyncio.run(main())


@pytest.mark.server
def test_cleartext_registration_is_refused(open_prosody):
    """tls='disabled' without allow_cleartext: the stream ends before any IQ
    (Prosody requires encryption anyway, so only the refusal is checked)."""
    async def main():
        jid, pw = fresh(open_prosody)
        with pytest.raises(epode.Error) as ei:
            await epode.register(jid, pw, **open_prosody.kwargs(), tls="disabled")
        assert ei.value.reason in ("tls", "auth", "protocol")

    asyncio.run(main())
