"""Automatic MAM catch-up (epode_mam_set_auto_catch_up) through real
Prosody and ejabberd: a client whose link is reset by the fault proxy
(no stream management, so the session cannot be resumed) reconnects on a
fresh session; the messages sent while it was away reach it exactly once
— from the archive, and not again when the server's offline store hands
the same messages over live.

This module's servers run with MAM (the fixtures below override
conftest's for this module only)."""

import subprocess
import threading
import uuid

import pytest

import integ_util as iu
from faultproxy import FaultProxy
from integ_util import USERS, jid


def _server_fixture(kind):
    @pytest.fixture(scope='module')
    def fixture(pki):
        srv = iu.start_server(kind, pki, modules=('mam',))
        try:
            yield srv
        finally:
            srv.stop()
    return fixture


prosody = _server_fixture('prosody')
ejabberd = _server_fixture('ejabberd')


def fresh_accounts(srv, *prefixes):
    out = []
    for p in prefixes:
        name = '%s-%s' % (p, uuid.uuid4().hex[:8])
        pw = 'pw-%s' % uuid.uuid4().hex[:12]
        srv.register(name, pw)
        USERS[name] = pw
        out.append(name)
    return out


def test_messages_sent_while_the_link_was_down_arrive_once(server):
    a, c = fresh_accounts(server, 'ka', 'kc')
    with FaultProxy(server.host, server.c2s_port, seed=7) as proxy:
        argv = [iu._binary('tests', 'integration', 'im_catchup_probe'), '--server', server.host,
                '--port', str(server.c2s_port), '--proxy-port', str(proxy.port),
                '--ca-file', server.ca_file, '--jid1', jid(server, a), '--password1', USERS[a],
                '--jid2', jid(server, c), '--password2', USERS[c], '--count', '3']
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        lines = []
        timer = threading.Timer(60, p.kill)
        timer.start()
        try:
            for line in p.stdout:
                lines.append(line.rstrip('\n'))
                if line.startswith('cut me'):
                    assert proxy.cut_all() >= 1
            p.wait(timeout=30)
        finally:
            timer.cancel()
            if p.poll() is None:
                p.kill()
        err = p.stderr.read()
    info = '\n'.join(lines) + '\n' + err[-3000:]
    assert p.returncode == 0 and lines[-1] == 'OK', info
    got = [l.split(' ', 2)[2] for l in lines if l.startswith('got ')]
    assert got.count('before') == 1, info
    for k in (1, 2, 3):
        assert got.count('while away %d' % k) == 1, info
    assert len(got) == 4, info
    assert sum(1 for l in lines if l.startswith('ready A ')) == 2, info
    # the archive had the three (whether the catch-up or the offline store
    # was first to hand each over: the other one's copy is not delivered)
    assert 'catchup done ok 3' in lines, info
