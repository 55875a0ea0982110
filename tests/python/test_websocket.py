"""epode.Client(..., websocket=...): XMPP over WebSocket (RFC 7395). A
malformed URL is a ValueError at once; against a real Prosody with
mod_websocket (ws:// on loopback, `consider_websocket_secure` so SASL is
offered) a WebSocket client and a TCP client exchange messages both
ways."""
from __future__ import annotations

import asyncio

import pytest

import epode


@pytest.mark.parametrize("url", ["https://h/", "wss://", "wss://h:0/", "wss://u@h/", "ws://h/#f"])
def test_malformed_websocket_url_is_a_value_error(url):
    with pytest.raises(ValueError):
        epode.Client("a@example.com", "pw", websocket=url)


def test_websocket_good_urls_empty_and_discovery():
    epode.Client("a@example.com", "pw", websocket="wss://example.com/xmpp-websocket")
    c = epode.Client("a@example.com", "pw", websocket="ws://127.0.0.1:5280/ws")
    c.connection.set_websocket("")  # back to TCP
    c.connection.set_websocket(None)  # XEP-0156 discovery at connect (test_discovery)


@pytest.fixture(scope="module")
def ws_prosody(tmp_path_factory):
    import xmppservers as xs
    pki = xs.make_pki(str(tmp_path_factory.mktemp("pki")))
    srv = xs.SERVERS["prosody"](pki=pki, graceful_stop=False, modules=["websocket"],
                                config={"consider_websocket_secure": True},
                                users={"wsa": "pw-a", "wsb": "pw-b"})
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.mark.server
def test_websocket_client_and_tcp_client_talk(ws_prosody):
    srv = ws_prosody
    url = "ws://127.0.0.1:%d/xmpp-websocket" % srv.http_port

    async def main():
        a = epode.Client("wsa@%s/ws" % srv.domain, "pw-a", ca_file=srv.ca_file, websocket=url)
        b = epode.Client("wsb@%s/tcp" % srv.domain, "pw-b", server=srv.host, port=srv.c2s_port,
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

        a.send_message(b.bound_jid, "over websocket \u00e9")
        frm, body = await asyncio.wait_for(got_b.get(), 10)
        assert (frm, body) == (a.bound_jid, "over websocket \u00e9")
        b.send_message(a.bound_jid, "over tcp <&>")
        frm, body = await asyncio.wait_for(got_a.get(), 10)
        assert (frm, body) == (b.bound_jid, "over tcp <&>")
        await a.disconnect()
        await b.disconnect()

    asyncio.run(main())
