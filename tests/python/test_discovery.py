"""XEP-0156 discovery through the public API: Connection.set_websocket(None)
and set_bosh(None) look up the domain's host-meta over HTTPS before the
link is made, and log in over the URL found, against real Prosody and
ejabberd. The host-meta documents for the domain "localhost" are served by
the test itself on 127.0.0.1:443 (the URL XEP-0156 fixes) with the test
CA's certificate, so each case can say what the domain publishes: both
documents, only the JSON one, only insecure links, nothing. Port 443 wants
root (CI runs as root): skipped where it cannot be had."""

from __future__ import annotations

import asyncio
import http.server
import itertools
import socketserver
import ssl
import threading

import pytest

import epode

pytestmark = pytest.mark.server

PATHS = {"websocket": {"prosody": "/xmpp-websocket", "ejabberd": "/ws"},
         "bosh": {"prosody": "/http-bind", "ejabberd": "/bosh"}}
XRD = "/.well-known/host-meta"
JRD = "/.well-known/host-meta.json"


class HostMeta:
    """An HTTPS server on 127.0.0.1:443 answering from `docs` (path ->
    (status, content type, body)); anything else is 404."""

    def __init__(self, pki):
        self.docs: dict = {}
        self.hits: list = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                owner.hits.append(self.path)
                status, ctype, body = owner.docs.get(self.path, (404, "text/plain", "no"))
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.httpd = Server(("127.0.0.1", 443), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*pki.server_pair("good"))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def serve(self, xrd_links=None, jrd_links=None):
        """Publishes these (rel, href) links in the XRD and/or JSON
        document; None leaves that document out (404)."""
        self.docs.clear()
        self.hits.clear()
        if xrd_links is not None:
            links = "".join("<Link rel='%s' href='%s'/>" % l for l in xrd_links)
            self.docs[XRD] = (200, "application/xrd+xml",
                              "<?xml version='1.0'?><XRD xmlns="
                              "'http://docs.oasis-open.org/ns/xri/xrd-1.0'>%s</XRD>" % links)
        if jrd_links is not None:
            links = ",".join('{"rel":"%s","href":"%s"}' % l for l in jrd_links)
            self.docs[JRD] = (200, "application/json", '{"links":[%s]}' % links)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    import xmppservers as xs
    return xs.make_pki(str(tmp_path_factory.mktemp("pki-discovery")))


@pytest.fixture(scope="module")
def hostmeta(pki):
    try:
        hm = HostMeta(pki)
    except OSError as e:
        pytest.skip("127.0.0.1:443 is not ours to bind (%s): XEP-0156 fixes the port" % e)
    try:
        yield hm
    finally:
        hm.close()


@pytest.fixture(scope="module", params=["prosody", "ejabberd"])
def server(request, pki):
    import xmppservers as xs
    kind = request.param
    https = xs.free_port()
    kw = dict(users={}, modules=["websocket", "bosh"], graceful_stop=False)
    if kind == "prosody":
        kw["config"] = {"https_ports": [https]}
    srv = xs.SERVERS[kind](pki=pki, **kw)
    if kind == "ejabberd":
        srv.extra_listeners = [{"port": https, "ip": xs.HOST, "module": "ejabberd_http",
                                "tls": True, "request_handlers": {"/ws": "ejabberd_http_ws",
                                                                  "/bosh": "mod_bosh"}}]
    srv.start()
    srv.https_port = https
    srv.counter = itertools.count()
    try:
        yield srv
    finally:
        srv.stop()


def url(srv, kind):
    scheme = "wss" if kind == "websocket" else "https"
    return "%s://localhost:%d%s" % (scheme, srv.https_port, PATHS[kind][srv.kind])


def account(srv):
    name = "disc%d" % next(srv.counter)
    srv.register(name, "pw-" + name)
    return "%s@%s" % (name, srv.domain), "pw-" + name


async def login(srv, pki, kind):
    """Logs in with discovery of `kind`; returns (client, error or None)."""
    jid, pw = account(srv)
    c = epode.Client(jid, pw, ca_file=pki.ca_cert)
    (c.connection.set_websocket if kind == "websocket" else c.connection.set_bosh)(None)
    try:
        await c.connect(timeout=20)
    except epode.Error as e:
        return c, e
    return c, None


@pytest.mark.parametrize("kind", ["websocket", "bosh"])
def test_discovered_url_logs_in(server, hostmeta, pki, kind):
    """Both kinds published in the XRD: each logs in over the URL found,
    with TLS checked for the URL's host and the domain."""
    hostmeta.serve(xrd_links=[("urn:xmpp:alt-connections:websocket", url(server, "websocket")),
                              ("urn:xmpp:alt-connections:xbosh", url(server, "bosh"))])

    async def main():
        c, err = await login(server, pki, kind)
        assert err is None, err
        sec = c.connection.security or ""
        assert sec.startswith("TLS 1.") and ("(WebSocket)" if kind == "websocket"
                                             else "(BOSH)") in sec, sec
        await c.disconnect()
        assert c.connection.reason == "closed"
    asyncio.run(main())
    assert hostmeta.hits == [XRD]  # the XRD sufficed: no JSON asked


def test_json_document_when_the_xrd_is_missing(server, hostmeta, pki):
    hostmeta.serve(jrd_links=[("urn:xmpp:alt-connections:websocket", url(server, "websocket"))])

    async def main():
        c, err = await login(server, pki, "websocket")
        assert err is None, err
        await c.disconnect()
    asyncio.run(main())
    assert hostmeta.hits == [XRD, JRD]


def test_insecure_links_are_never_used(server, hostmeta, pki):
    """ws:// and http:// links (a downgrade a forged document could try)
    are ignored: with nothing else published the login fails, clearly,
    and no connection is attempted."""
    insecure_ws = url(server, "websocket").replace("wss://", "ws://")
    insecure_bosh = url(server, "bosh").replace("https://", "http://")
    hostmeta.serve(xrd_links=[("urn:xmpp:alt-connections:websocket", insecure_ws),
                              ("urn:xmpp:alt-connections:xbosh", insecure_bosh)],
                   jrd_links=[("urn:xmpp:alt-connections:websocket", insecure_ws)])

    async def main():
        for kind in ("websocket", "bosh"):
            c, err = await login(server, pki, kind)
            assert err is not None
            assert c.connection.reason == "network", c.connection.reason
            text = str(err)
            assert ("no %s URL" % ("WebSocket" if kind == "websocket" else "BOSH")) in text \
                or "offers no" in text, text
    asyncio.run(main())


def test_nothing_published_names_both_documents(server, hostmeta, pki):
    hostmeta.serve()

    async def main():
        c, err = await login(server, pki, "bosh")
        assert err is not None
        text = str(err)
        assert XRD in text and JRD in text and "404" in text, text
        assert c.connection.reason == "network"
    asyncio.run(main())


def test_setting_a_url_or_empty_forgets_the_wish(server, hostmeta, pki):
    """set_websocket(None) then set_websocket(URL): the URL, no lookup;
    set_bosh(None) then set_bosh(""): plain TCP, no lookup."""
    hostmeta.serve()

    async def main():
        jid, pw = account(server)
        c = epode.Client(jid, pw, server=server.host, port=server.c2s_port, ca_file=pki.ca_cert)
        c.connection.set_websocket(None)
        c.connection.set_websocket(url(server, "websocket"))
        await c.connect(timeout=20)
        assert "(WebSocket)" in (c.connection.security or "")
        await c.disconnect()
        d = epode.Client(jid, pw, server=server.host, port=server.c2s_port, ca_file=pki.ca_cert)
        d.connection.set_bosh(None)
        d.connection.set_bosh("")
        await d.connect(timeout=20)
        assert "(STARTTLS)" in (d.connection.security or "")
        await d.disconnect()
    asyncio.run(main())
    assert hostmeta.hits == []
