"""HTTP File Upload (XEP-0363) from Python: ``await client.upload(...)``
against a Prosody with mod_http_file_share on an HTTPS port (the test
CA's certificate), the URL fetched back and compared; the limit as
epode.UploadError; the echo bot's "send me a file" answered with a URL
carried as OOB data (XEP-0066)."""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import sys
import urllib.request

import pytest

import epode

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(HERE)), "bindings", "python", "examples")
LIMIT = 200000


@pytest.fixture(scope="module")
def upload_server(tmp_path_factory):
    import xmppservers as xs
    from conftest import Server
    pki = xs.make_pki(str(tmp_path_factory.mktemp("pki")))
    port = xs.free_port()
    cert, key = pki.server_pair("good")
    srv = xs.SERVERS["prosody"](
        pki=pki, graceful_stop=False, users={"alice": "pw1"},
        config={"https_ports": [port], "https_interfaces": [xs.HOST],
                "https_ssl": {"certificate": cert, "key": key}},
        extra_config='Component "upload.localhost" "http_file_share"\n'
                     '\thttp_file_share_size_limit = %d' % LIMIT)
    srv.start()
    try:
        yield Server(srv)
    finally:
        srv.stop()


def fetch(server, url: str) -> bytes:
    ctx = ssl.create_default_context(cafile=server.ca_file)
    with urllib.request.urlopen(url, context=ctx, timeout=20) as r:
        data: bytes = r.read()
        return data


def test_upload_error_is_an_epode_error():
    assert issubclass(epode.UploadError, epode.Error)
    assert epode.ENOTSUP < 0 and epode.EREFUSED < 0 and epode.EHTTP < 0
    assert epode.oob_url("<message xmlns='jabber:client'><x xmlns='jabber:x:oob'>"
                         "<url>https://a.example/f</url></x></message>") == "https://a.example/f"
    assert epode.oob_url("<message xmlns='jabber:client'/>") is None


def test_upload_needs_a_path_or_bytes():
    async def main():
        c = epode.Client("a@example.com", "x")
        with pytest.raises(TypeError):
            await c.upload(12345)  # type: ignore[arg-type]
    asyncio.run(main())


def test_upload_of_a_path_that_cannot_be_opened_raises_oserror(tmp_path):
    # a user got epode.Error ENET ("network error") for a missing file
    async def main():
        c = epode.Client("a@example.com", "x")
        with pytest.raises(FileNotFoundError):
            await c.upload(str(tmp_path / "missing.txt"))
        with pytest.raises(IsADirectoryError):
            await c.upload(tmp_path)
    asyncio.run(main())


@pytest.mark.server
def test_upload_bytes_and_a_file_then_get_them_back(upload_server, tmp_path):
    jid, pw = upload_server.account("up")
    data = bytes(range(256)) * 400
    path = tmp_path / "report.txt"
    path.write_bytes(b"a report\n" * 1000)
    seen = []

    async def main():
        async with epode.Client(jid, pw, **upload_server.kwargs()) as c:
            url1 = await c.upload(data, "bytes.bin", "application/octet-stream",
                                  progress=lambda sent, total: seen.append((sent, total)))
            url2 = await c.upload(str(path))  # the type guessed from ".txt"
            assert c.uploader.service == "upload.localhost"
            assert c.uploader.max_file_size == LIMIT
            return url1, url2

    url1, url2 = asyncio.run(main())
    assert url2.endswith("/report.txt")
    assert seen and seen[-1] == (len(data), len(data))
    assert fetch(upload_server, url1) == data
    assert fetch(upload_server, url2) == path.read_bytes()
    ctx = ssl.create_default_context(cafile=upload_server.ca_file)
    with urllib.request.urlopen(url2, context=ctx, timeout=20) as r:
        assert r.headers.get_content_type() == "text/plain"


@pytest.mark.server
def test_upload_over_the_limit_raises_upload_error(upload_server):
    jid, pw = upload_server.account("big")

    async def main():
        async with epode.Client(jid, pw, **upload_server.kwargs()) as c:
            with pytest.raises(epode.UploadError) as first:
                await c.upload(b"x" * (LIMIT + 1), "big.bin")
            # the limit is known now: refused before any slot
            with pytest.raises(epode.UploadError) as known:
                await c.upload(b"x" * (LIMIT + 1), "big.bin")
            assert known.value.code == epode.ELIMIT
            assert known.value.max_file_size == LIMIT
            # with the limit unknown the service itself refuses
            c.uploader.set_service("upload.localhost")
            with pytest.raises(epode.UploadError) as second:
                await c.upload(b"x" * (LIMIT + 1), "big.bin")
            return first.value, second.value

    first, second = asyncio.run(main())
    assert first.code == epode.ELIMIT and first.max_file_size == LIMIT
    assert second.code == epode.ELIMIT and second.name == "ELIMIT"
    assert second.condition == "not-acceptable"
    assert second.max_file_size == LIMIT


@pytest.mark.server
def test_echo_bot_answers_send_me_a_file_with_an_oob_url(upload_server, tmp_path):
    bot, bot_pw = upload_server.account("bot")
    pwfile = tmp_path / "bot.pw"
    pwfile.write_text(bot_pw + "\n")
    argv = [sys.executable, os.path.join(EXAMPLES, "echo_bot.py"), "--jid", bot + "/bot",
            "--password-file", str(pwfile), "--server", upload_server.host, "--port",
            str(upload_server.port), "--ca-file", upload_server.ca_file]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("ready as"), proc.stderr
        jid, pw = upload_server.account("asker")

        async def main():
            got: asyncio.Queue = asyncio.Queue()
            async with epode.Client(jid, pw, **upload_server.kwargs()) as c:
                c.on_message(lambda m: got.put_nowait(m) if m.body else None)
                c.send_message(bot + "/bot", "Send me a file")
                m = await asyncio.wait_for(got.get(), 20)
                return m.body, epode.oob_url(m)

        body, oob = asyncio.run(main())
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert oob and body == oob, (body, oob, err)
    assert oob.endswith("/hello.txt")
    assert "uploaded a file for" in out
    text = fetch(upload_server, oob)
    assert text.startswith(b"Hello from epode's echo bot")
