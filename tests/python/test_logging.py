"""epode's log lines reach Python's logging module: the 'epode' logger's
children by area (epode.conn, epode.tls, epode.xml-out, ...), the XML
traffic at level epode.XML with credentials redacted, and only when
asked for; Context.set_log() for a callable of one's own."""

import asyncio
import logging

import pytest

import epode
from epode import _epode


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(level=1)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def collected():
    h = Collect()
    base = logging.getLogger("epode")
    old = base.level
    base.addHandler(h)
    try:
        yield h, base
    finally:
        base.removeHandler(h)
        base.setLevel(old)
        epode.log_to_logging(epode.default_context())  # back to the default level


def test_set_log_checks_its_arguments():
    ctx = _epode.Context()
    with pytest.raises(TypeError):
        ctx.set_log(42)
    with pytest.raises(ValueError):
        ctx.set_log(lambda *a: None, 99)
    assert (epode.LOG_ERROR, epode.LOG_WARN, epode.LOG_INFO, epode.LOG_DEBUG,
            epode.LOG_XML) == (0, 1, 2, 3, 4)
    ctx.set_log(None)  # silence is fine
    assert epode.XML == 5 and logging.getLevelName(epode.XML) == "XML"


@pytest.mark.server
def test_lines_and_xml_reach_the_epode_logger(prosody, collected):
    handler, base = collected
    jid, pw = prosody.account("log")

    async def main(xml):
        base.setLevel(epode.XML if xml else logging.DEBUG)
        epode.log_to_logging(epode.default_context())
        c = epode.Client(jid, pw, **prosody.kwargs())
        await c.connect(timeout=20)
        await c.disconnect()

    asyncio.run(main(False))
    names = {r.name for r in handler.records}
    assert "epode.conn" in names, names
    assert any("ready as" in r.getMessage() for r in handler.records)
    assert not any(r.levelno == epode.XML for r in handler.records)  # not asked for
    handler.records.clear()
    asyncio.run(main(True))
    xml = [r for r in handler.records if r.levelno == epode.XML]
    assert any(r.name == "epode.xml-out" and "<auth" in r.getMessage() for r in xml), xml[:5]
    assert any(r.name == "epode.xml-in" for r in xml)
    assert not any(pw in r.getMessage() for r in handler.records)  # redacted


@pytest.mark.server
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_raising_log_callable_does_not_stop_the_client(prosody):
    jid, pw = prosody.account("logx")
    seen = []

    def bad(level, area, msg):
        seen.append(area)
        raise RuntimeError("log sink broke")

    async def main():
        ctx = _epode.Context()
        ctx.set_log(bad, epode.LOG_INFO)
        c = epode.Client(jid, pw, context=ctx, **prosody.kwargs())
        await c.connect(timeout=20)
        assert c.connection.ready
        await c.disconnect()

    asyncio.run(main())
    assert seen  # it was called, and the login went on regardless
