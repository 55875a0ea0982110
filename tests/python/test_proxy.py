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
