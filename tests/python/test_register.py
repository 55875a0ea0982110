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

def _form(*fields):
    f = epode.RegistrationForm()
    f.fields = [epode.FormField(*x) for x in fields]
    return f


def test_registration_form_values():
    form = _form(("username", "text-single", None, True, [], [], None),
                 ("password", "text-private", None, True, [], [], None),
                 ("email", "text-single", "E-mail", True, [], [], None),
                 (None, "fixed", None, False, ["Hello"], [], None),
                 ("key", "hidden", None, False, ["k"], [], None))
    assert form.missing() == ["username", "password", "email"]
    form["username"] = "u"
    form["password"] = "p"
    assert form.missing() == ["email"] and form["username"] == "u"
    assert "email" in form and "nope" not in form
    with pytest.raises(KeyError):
        form["nope"] = "x"
    with pytest.raises(TypeError):
        form["email"] = 3
    form["email"] = ["a@example.org"]
    assert form.field("email").value == "a@example.org" and form.missing() == []


def test_conditions_read_as_phrases():
    assert _register.cond_text("conflict") == "already registered"
    assert _register.cond_text("not-allowed").startswith("registration not allowed")
    assert _register.cond_text("gone") == "gone"


def test_register_needs_a_username():
    with pytest.raises(ValueError):
        asyncio.run(epode.register("example.org", "pw"))


def test_the_helper_needs_a_connection():
    with pytest.raises(TypeError):
        epode._epode.Register("not a connection")
    ctx = epode.Context()
    conn = epode.Connection(ctx, "a@example.org", None)
    reg = epode._epode.Register(conn)
    assert reg.form() is None
    with pytest.raises(KeyError):
        reg.set_value("username", "x")
    with pytest.raises(epode.Error) as ei:
        reg.fetch(lambda *a: None)
    assert ei.value.name == "ESTATE"  # not connected
    with pytest.raises(TypeError):
        reg.fetch(42)
    del reg


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


def test_account_calls_before_login_say_estate():
    # a user got Error('unregister: not logged in') with code None
    async def main():
        c = epode.Client("a@example.org", "pw")
        for call in (c.unregister(), c.change_password("new")):
            with pytest.raises(epode.Error) as ei:
                await call
            assert ei.value.code == epode.ESTATE and ei.value.name == "ESTATE"
    asyncio.run(main())
