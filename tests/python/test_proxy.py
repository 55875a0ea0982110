"""epode.Client(..., proxy=...): a malformed URL is a ValueError at once,
and a login through a SOCKS5 proxy of the tests' own (the integration
tests' proxies.py) reaches a real Prosody, the proxy asked for the server
by name."""
from __future__ import annotations

import asyncio
import os
import sys

import pytest

import epode

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "integration"))


@pytest.mark.parametrize("url", ["ftp://h:1", "socks5://", "socks5://h:0", "http://h/path",
                                 "socks5://u:p%zz@h"])
def test_malformed_proxy_url_is_a_value_error(url):
    with pytest.raises(ValueError):
        epode.Client("a@example.com", "pw", proxy=url)


def test_proxy_none_and_good_urls_are_taken():
    epode.Client("a@example.com", "pw", proxy="socks5://user:pw@127.0.0.1:9050")
    c = epode.Client("a@example.com", "pw", proxy="http://127.0.0.1")
    c.connection.set_proxy(None)


@pytest.mark.server
def test_login_through_socks5(prosody):
    from proxies import Socks5Proxy

    proxy = Socks5Proxy(user="py", password="pw")
    jid, password = prosody.account("px")

    async def main():
        c = epode.Client(jid, password, **prosody.kwargs(), proxy=proxy.url())
        await c.connect(timeout=20)
        assert c.is_ready and "TLS" in c.connection.security
        await c.disconnect()

    try:
        asyncio.run(main())
        assert proxy.requests == [(prosody.host, prosody.port)]
    finally:
        proxy.close()


SECRET = "proxy-comp-secret"


@pytest.fixture(scope="module")
def prosody_comp(tmp_path_factory):
    import xmppservers as xs
    pki = xs.make_pki(str(tmp_path_factory.mktemp("pki")))
    srv = xs.SERVERS["prosody"](pki=pki, graceful_stop=False, users={"alice": "pw1"},
                                component_secret=SECRET)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.mark.server
def test_component_through_socks5(prosody_comp):
    """A component connection through a proxy: in clear only when TLS is
    loosened (epode cannot see that the server is on loopback), then the
    handshake and a message from a client echoed."""
    from proxies import Socks5Proxy

    srv = prosody_comp
    proxy = Socks5Proxy()

    async def main():
        strict = epode.Component(srv.component_domain, SECRET, server=srv.host,
                                 port=srv.component_port, proxy=proxy.url())
        with pytest.raises(epode.Error) as e:
            await strict.connect(timeout=10)
        assert "loopback" in str(e.value)

        comp = epode.Component(srv.component_domain, SECRET, server=srv.host,
                               port=srv.component_port, proxy=proxy.url(), tls="optional")

        @comp.on_message
        def echo(msg):
            if msg.body:
                comp.send_message(msg.from_, msg.body.upper(), from_=msg.to)

        await comp.connect(timeout=10)
        client = epode.Client("alice@" + srv.domain, "pw1", server=srv.host, port=srv.c2s_port,
                              ca_file=srv.ca_file)
        got: asyncio.Queue = asyncio.Queue()

        @client.on_message
        def on_message(msg):
            if msg.body:
                got.put_nowait(msg.body)

        await client.connect(timeout=10)
        client.send_message("x@" + srv.component_domain, "via proxy")
        assert await asyncio.wait_for(got.get(), 10) == "VIA PROXY"
        await client.disconnect()
        await comp.disconnect()

    try:
        asyncio.run(main())
        assert (srv.host, srv.component_port) in proxy.requests
    finally:
        proxy.close()
