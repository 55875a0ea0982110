"""epode.Client(..., bosh=...): XMPP over BOSH (XEP-0124/0206). A
malformed URL, or bosh= beside websocket=, is a ValueError at once;
against a real Prosody with mod_bosh (http:// on loopback,
`consider_bosh_secure` so SASL is offered in clear there) a BOSH client
logs in and exchanges messages both ways with a TCP client."""
from __future__ import annotations

import asyncio

import pytest

import epode


@pytest.mark.parametrize("url", ["wss://h/", "https://", "https://h:0/", "https://u@h/",
                                 "http://h/#f", "http://h/a b", "ftp://h/"])
def test_malformed_bosh_url_is_a_value_error(url):
    with pytest.raises(ValueError):
        epode.Client("a@example.com", "pw", bosh=url)


def test_bosh_good_urls_empty_and_discovery():
    epode.Client("a@example.com", "pw", bosh="https://example.com/http-bind")
    c = epode.Client("a@example.com", "pw", bosh="http://127.0.0.1:5280/http-bind")
    c.connection.set_bosh("")  # back to TCP
    c.connection.set_bosh("https://example.com:5443/bosh")
    c.connection.set_websocket("wss://example.com/ws")  # replaces the BOSH URL
    c.connection.set_bosh(None)  # XEP-0156 discovery at the next connect


def test_bosh_with_websocket_or_a_bad_type_is_refused():
    with pytest.raises(ValueError, match="exclude each other"):
        epode.Client("a@example.com", "pw", bosh="http://127.0.0.1/b",
                     websocket="ws://127.0.0.1/w")
    with pytest.raises(TypeError):
        epode.Client("a@example.com", "pw", bosh=5280)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def bosh_prosody(tmp_path_factory):
    import xmppservers as xs
    pki = xs.make_pki(str(tmp_path_factory.mktemp("pki")))
    srv = xs.SERVERS["prosody"](pki=pki, graceful_stop=False, modules=["bosh"],
                                config={"consider_bosh_secure": True},
                                users={"bosha": "pw-a", "boshb": "pw-b"})
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.mark.server
def test_bosh_client_and_tcp_client_talk(bosh_prosody):
    srv = bosh_prosody
    url = "http://127.0.0.1:%d/http-bind" % srv.http_port

    async def main():
        a = epode.Client("bosha@%s/bosh" % srv.domain, "pw-a", ca_file=srv.ca_file, bosh=url)
        b = epode.Client("boshb@%s/tcp" % srv.domain, "pw-b", server=srv.host, port=srv.c2s_port,
                         ca_file=srv.ca_file)
        await asyncio.gather(a.connect(timeout=20), b.connect(timeout=20))
        got_a: asyncio.Queue = asyncio.Queue()
        got_b: asyncio.Queue = asyncio.Queue()

        @a.on_message
        def on_a(msg):
            got_a.put_nowait((msg.from_, msg.body))

        @b.on_message
        def on_b(msg):
            got_b.put_nowait((msg.from_, msg.body))

        a.send_message(b.bound_jid, "over bosh \u00e9")
        frm, body = await asyncio.wait_for(got_b.get(), 10)
        assert (frm, body) == (a.bound_jid, "over bosh \u00e9")
        b.send_message(a.bound_jid, "over tcp <&>")
        frm, body = await asyncio.wait_for(got_a.get(), 10)
        assert (frm, body) == (b.bound_jid, "over tcp <&>")
        await a.disconnect()
        await b.disconnect()

    asyncio.run(main())
