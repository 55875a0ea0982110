"""The server goes away under a logged-in epode client (and an echo-bot):
a graceful stop sends the system-shutdown stream error, which reaches the
application as reason STREAM_ERROR; a SIGKILLed server just vanishes,
which is reason NETWORK. Either way the clients notice at once and exit 1
with a one-line reason. Each test starts its own throwaway server."""

import time

import pytest

from integ_util import (KINDS, conn_args, finish_probe, jid, probe, read_line_starting,
                        start_server, write_password_file)

CASES = [(k, g) for k in KINDS for g in ('graceful', 'kill')]


@pytest.mark.parametrize('kind,how', CASES, ids=['%s-%s' % c for c in CASES])
def test_server_goes_away(bins, pki, spawn, tmp_path, kind, how):
    srv = start_server(kind, pki, users={'alice': 'alice-secret', 'bob': 'bob-secret'},
                       disable=['muc'])
    try:
        pw = write_password_file(tmp_path, 'bob')
        bot = spawn.popen([bins['echo_bot']] + conn_args(srv) +
                          ['--jid', jid(srv, 'bob'), '--password-file', pw])
        p = probe(bins, srv, '--presence', '--expect-from', 'nobody@%s' % srv.domain,
                  timeout=30, popen=spawn.popen)
        read_line_starting(p, 'ready ', timeout=10)
        # the bot is up once it answers
        r = probe(bins, srv, '--presence', '--send', jid(srv, 'bob'), 'ping?',
                  '--expect-from', jid(srv, 'bob'), timeout=10)
        assert r.rc == 0, r
        t0 = time.monotonic()
        srv.stop(graceful=(how == 'graceful'))
        res = finish_probe(p, timeout=10)
        took = time.monotonic() - t0
    finally:
        srv.stop()
    assert res.rc == 1, res
    d = res.disconnected
    got = (d['reason'], d['error'], d['condition'])
    if how == 'graceful':
        # ejabberd 23.01 sometimes ends its c2s processes before they send
        # system-shutdown (seen under load, ~1 run in 10): the link then
        # just closes. Prosody always sends the stream error.
        allowed = [('STREAM_ERROR', 'STREAM', 'system-shutdown')]
        if kind == 'ejabberd':
            allowed.append(('NETWORK', 'EOF', '-'))
        assert got in allowed, res
    else:
        assert d['reason'] == 'NETWORK', res
        assert d['condition'] == '-', res
    assert took < 5, 'noticed only after %.2fs' % took
    rc = bot.wait(5)
    err = bot.stderr.read()
    assert rc == 1, (rc, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith('echo-bot: '), err
    if how == 'graceful' and got[0] == 'STREAM_ERROR':
        # Each session races on its own (see above): on ejabberd the bot's
        # link may just close even when the probe got the stream error.
        if kind == 'ejabberd' and 'without closing the stream' in lines[0]:
            return
        assert 'system-shutdown' in lines[0], err
