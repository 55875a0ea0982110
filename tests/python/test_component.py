"""epode.Component (XEP-0114) against a small scripted component port of
the test's own on 127.0.0.1: the handshake, a message to anyone@domain
echoed from that JID, a presence probe answered, from_ filled in or
checked, and a wrong secret refused with the server's not-authorized."""

from __future__ import annotations

import asyncio
import hashlib
import re

import pytest

import epode

DOMAIN = "comp.example.com"
SECRET = "s3cr3t \u00e4"
STREAM_ID = "a1b2c3"


class FakeComponentPort:
    """Accepts one component stream: checks the handshake, then sends
    `script` stanzas and collects what the component writes."""

    def __init__(self, script: list[str], accept: bool = True) -> None:
        self.script = script
        self.accept = accept
        self.received = ""
        self.handshake_ok: bool | None = None
        self.got_all = asyncio.Event()
        self.want = 0

    async def start(self) -> int:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def serve(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        buf = ""
        while "<stream:stream" not in buf or ">" not in buf.split("<stream:stream", 1)[1]:
            buf += (await r.read(4096)).decode()
        assert "jabber:component:accept" in buf and "to='%s'" % DOMAIN in buf
        w.write(("<stream:stream xmlns='jabber:component:accept' xmlns:stream="
                 "'http://etherx.jabber.org/streams' from='%s' id='%s'>" % (DOMAIN, STREAM_ID)).encode())
        await w.drain()
        while "</handshake>" not in buf:
            buf += (await r.read(4096)).decode()
        got = re.search(r"<handshake>([0-9a-f]+)</handshake>", buf).group(1)
        want = hashlib.sha1((STREAM_ID + SECRET).encode()).hexdigest()
        self.handshake_ok = got == want
        if not (self.accept and self.handshake_ok):
            w.write(b"<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                    b"<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>bad token</text>"
                    b"</stream:error></stream:stream>")
            await w.drain()
            w.close()
            return
        w.write(b"<handshake/>")
        for s in self.script:
            w.write(s.encode())
        await w.drain()
        while True:
            data = await r.read(65536)
            if not data:
                break
            self.received += data.decode()
            if self.received.count("<message") + self.received.count("<presence") >= self.want:
                self.got_all.set()
            if "</stream:stream>" in self.received:
                w.write(b"</stream:stream>")
                await w.drain()
                break
        w.close()

    def close(self) -> None:
        self.server.close()


def test_component_echoes_and_answers_probes():
    async def main():
        port = FakeComponentPort([
            "<message from='juliet@example.com/b' to='anyone@%s' type='chat'>"
            "<body>hello</body></message>" % DOMAIN,
            "<presence type='probe' from='juliet@example.com' to='anyone@%s'/>" % DOMAIN,
        ])
        port.want = 3
        p = await port.start()
        comp = epode.Component(DOMAIN, SECRET, server="127.0.0.1", port=p)

        @comp.on_message
        def echo(msg):
            if msg.body:
                comp.send_message(msg.from_, msg.body, from_=msg.to)

        @comp.on_presence(type="probe")
        def probe(pres):
            comp.send_presence(to=pres.from_, from_=pres.to)

        await comp.connect(timeout=10)
        assert comp.bound_jid == DOMAIN
        comp.send_message("juliet@example.com", "from the domain")  # from_ = the domain
        with pytest.raises(epode.Error) as e:
            comp.send(epode.Message("juliet@example.com", "no from"))
        assert e.value.code == epode.EJID
        await asyncio.wait_for(port.got_all.wait(), 10)
        await comp.disconnect()
        port.close()
        return port

    port = asyncio.run(main())
    assert port.handshake_ok
    got = port.received
    assert re.search(r"<message[^>]*from=.anyone@comp\.example\.com.[^>]*>.*hello", got), got
    assert re.search(r"<presence[^>]*from=.anyone@comp\.example\.com.", got), got
    assert re.search(r"<message[^>]*from=.comp\.example\.com.", got), got
    assert "jabber:client" not in got  # the stream's own namespace, by default


def test_component_wrong_secret_is_refused():
    async def main():
        port = FakeComponentPort([], accept=False)
        p = await port.start()
        comp = epode.Component(DOMAIN, "wrong", server="127.0.0.1", port=p)
        with pytest.raises(epode.Error) as e:
            await comp.connect(timeout=10)
        port.close()
        return e.value, port

    err, port = asyncio.run(main())
    assert port.handshake_ok is False
    assert "not-authorized" in str(err)
    assert "refused the component handshake" in str(err)


def test_component_needs_a_server_and_a_domain():
    with pytest.raises(ValueError):
        epode.Component(DOMAIN, SECRET, server="")
    with pytest.raises(epode.Error):
        epode.Component("user@" + DOMAIN, SECRET, server="127.0.0.1")


# ---- against a real Prosody (its component port) ----------------------------

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
def test_component_and_a_client_on_prosody(prosody_comp):
    srv = prosody_comp

    async def main():
        comp = epode.Component(srv.component_domain, SECRET, server=srv.host,
                               port=srv.component_port)

        @comp.on_message
        def echo(msg):
            if msg.body:
                comp.send_message(msg.from_, msg.body.upper(), from_=msg.to)

        await comp.connect(timeout=10)
        assert comp.bound_jid == srv.component_domain
        client = epode.Client("alice@" + srv.domain, "pw1", server=srv.host, port=srv.c2s_port,
                              ca_file=srv.ca_file)
        got: asyncio.Queue = asyncio.Queue()

        @client.on_message
        def on_message(msg):
            if msg.body:
                got.put_nowait((msg.from_, msg.body))

        await client.connect(timeout=10)
        target = "someone@" + srv.component_domain
        client.send_message(target, "shout this")
        assert await asyncio.wait_for(got.get(), 10) == (target, "SHOUT THIS")
        await client.disconnect()
        await comp.disconnect()

        bad = epode.Component(srv.component_domain, "wrong", server=srv.host,
                              port=srv.component_port)
        with pytest.raises(epode.Error) as e:
            await bad.connect(timeout=10)
        assert "not-authorized" in str(e.value)

    asyncio.run(main())
