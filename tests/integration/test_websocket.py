"""XMPP over WebSocket (RFC 7395, epode_conn_set_websocket) against real
Prosody 0.12 (mod_websocket) and ejabberd 23.01 (ejabberd_http_ws): login
over ws:// (loopback) and wss:// (TLS checked for the URL's host and the
XMPP domain), messages both ways with a client on plain TCP, stream
management resumption across links cut by the fault proxy, and a clear
error from a server that does not upgrade.

Prosody gives no SASL over ws:// while it requires encryption, unless
`consider_websocket_secure` (SERVERS.md): set here for the loopback ws://
cases. wss:// goes to an HTTPS port of each server."""
import re
import subprocess
import uuid

import pytest

import integ_util as iu
from faultproxy import FaultProxy

PATHS = {'prosody': '/xmpp-websocket', 'ejabberd': '/ws'}


def _start(kind, pki, cert='good'):
    return iu.start_http_server(kind, pki, 'websocket', 'consider_websocket_secure',
                                ('/ws', 'ejabberd_http_ws'), cert)


@pytest.fixture(scope='module', params=iu.KINDS)
def ws_server(request, pki):
    srv = _start(request.param, pki)
    try:
        yield srv
    finally:
        srv.stop()


def ws_url(srv, port=None):
    return 'ws://127.0.0.1:%d%s' % (port or srv.http_port, PATHS[srv.kind])


def wss_url(srv):
    return 'wss://localhost:%d%s' % (srv.https_port, PATHS[srv.kind])


@pytest.mark.parametrize('scheme', ['ws', 'wss'])
def test_websocket_login(bins, ws_server, scheme, record_id):
    url = ws_url(ws_server) if scheme == 'ws' else wss_url(ws_server)
    res = iu.probe(bins, ws_server, '--websocket', url, '--verbose', record=record_id)
    assert res.rc == 0, res
    assert res.ready and res.ready.startswith('alice@%s/' % ws_server.domain), res
    assert res.disconnected['reason'] == 'CLOSED', res
    # the stream is framed as RFC 7395 says, and SCRAM is used (never PLAIN in clear)
    assert "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'" in res.stderr, res
    assert "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>" in res.stderr, res
    assert res.mechanism.startswith('SCRAM-'), res
    if scheme == 'wss':
        assert 'TLS_UP' in res.events, res
        assert res.security.startswith('TLS 1.') and '(WebSocket)' in res.security, res


def test_websocket_messages_both_ways_with_a_tcp_client(bins, ws_server, spawn):
    """alice over WebSocket, bob over TCP, each message to the other's bare
    JID. Ordered without sleeping: bob starts once alice printed "ready"
    (her presence is out by then), sends to her, and she answers (--reply)
    once his message arrived, when his presence is out too. Started side by
    side, a fast TCP login could message alice before her presence, and
    ejabberd keeps that offline for her next login (seen in CI)."""
    d = ws_server.domain
    tag = uuid.uuid4().hex[:8]
    over_ws = iu.probe_background(bins, ws_server, '--websocket', ws_url(ws_server),
                                  '--presence', '--send', 'bob@' + d, 'from-ws-' + tag, '--reply',
                                  '--expect-from', 'bob@' + d, timeout=30, spawn=spawn)
    assert over_ws.wait_ready(), ''.join(over_ws.lines)
    over_tcp = iu.probe(bins, ws_server, '--presence', '--send', 'alice@' + d,
                        'from-tcp-' + tag, '--expect-from', 'alice@' + d, user='bob',
                        timeout=30, popen=spawn.popen)
    out_tcp, err_tcp = over_tcp.communicate(timeout=60)
    res_ws = over_ws.finish()
    out_ws, err_ws = res_ws.stdout, res_ws.stderr
    assert res_ws.rc == 0, (out_ws, err_ws[-3000:])
    assert over_tcp.returncode == 0, (out_tcp, err_tcp[-3000:])
    assert 'message bob@%s' % d in out_ws and 'from-tcp-' + tag in out_ws, out_ws
    assert 'message alice@%s' % d in out_tcp and 'from-ws-' + tag in out_tcp, out_tcp


@pytest.mark.parametrize('which', ['sender', 'receiver'])
def test_websocket_stream_management_survives_cut_links(ws_server, which, capsys, request):
    """The WebSocket side goes through the fault proxy, which cuts its
    link again and again; the other side is on plain TCP. Every message
    is delivered or reported back, none twice.

    ejabberd 23.01 with the receiver over WebSocket: ejabberd often fails
    the resumption itself — its log says "Cannot resume session ...:
    Session state copying timed out" (the old c2s process, bound to the
    dead WebSocket, never hands its state over), it drops the connection
    instead of answering <failed/>, and finally "Previous session not
    found": the messages it had acknowledged to the sender and queued for
    the old session are gone on the server. The same run over TCP, and
    Prosody over WebSocket, lose nothing."""
    srv = ws_server
    if srv.kind == 'ejabberd' and which == 'receiver':
        request.node.add_marker(pytest.mark.xfail(
            reason='ejabberd 23.01 loses a WebSocket session it cannot resume '
                   '("Session state copying timed out")', strict=False))
    tx, rx = ('wst-%s' % uuid.uuid4().hex[:8], 'wsr-%s' % uuid.uuid4().hex[:8])
    for u in (tx, rx):
        srv.register(u, 'pw-' + u)
    exe = iu._binary('tests', 'integration', 'sm_fault')
    count = 400
    with FaultProxy(srv.host, srv.http_port, seed=77) as proxy:
        proxy.random_cuts(0.4, jitter=0.5)
        r = subprocess.run([exe, '--server', srv.host, '--port', str(srv.c2s_port),
                            '--ca-file', srv.ca_file,
                            '--%s-websocket' % which, ws_url(srv, proxy.port),
                            '--sender', '%s@%s' % (tx, srv.domain), '--sender-password', 'pw-' + tx,
                            '--receiver', '%s@%s' % (rx, srv.domain),
                            '--receiver-password', 'pw-' + rx,
                            '--count', str(count), '--window', '10', '--rate', '200',
                            '--label', 'ws-%s-%s' % (which, srv.kind), '--timeout', '90'],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=150)
        proxy.random_cuts(None)
        cuts = proxy.cuts
    line = [l for l in r.stdout.splitlines() if l.startswith('sm-fault ')]
    assert line, (r.stdout, r.stderr[-3000:])
    with capsys.disabled():
        print('\n' + line[0] + ' (proxy cuts %d)' % cuts)
    m = dict(re.findall(r'(\w+)=(\d+)', line[0]))
    assert int(m['sent']) == count, line
    assert int(m['unreported']) == 0, line
    assert int(m['duplicates']) == 0, line
    assert cuts >= 3, 'the proxy cut only %d times' % cuts
    assert r.returncode == 0, (line, r.stderr[-2000:])


def test_websocket_path_that_does_not_upgrade_is_a_clear_error(bins, ws_server):
    url = 'ws://127.0.0.1:%d/no-such-endpoint' % ws_server.http_port
    res = iu.probe(bins, ws_server, '--websocket', url)
    assert res.rc != 0 and not res.ready, res
    assert res.disconnected['reason'] == 'NETWORK', res
    assert 'refused the WebSocket upgrade' in res.disconnected['text'], res


def test_epode_send_over_websocket(bins, ws_server, tmp_path):
    pw = iu.write_password_file(tmp_path, 'alice')
    for url in (ws_url(ws_server), wss_url(ws_server)):
        r = subprocess.run([bins['epode_send'], '--websocket', url, '--ca-file', ws_server.ca_file,
                            '--jid', 'alice@' + ws_server.domain, '--password-file', pw,
                            'bob@' + ws_server.domain, 'over ' + url],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, (url, r.stdout, r.stderr[-2000:])


def test_wss_certificate_for_another_name_is_refused(bins, pki):
    """The HTTPS endpoint shows a certificate for another name: refused
    (reason TLS), whatever the XMPP session behind it would do."""
    srv = _start('prosody', pki, cert='wrongname')
    try:
        res = iu.probe(bins, srv, '--websocket', wss_url(srv))
        assert res.rc != 0 and not res.ready, res
        assert res.disconnected['reason'] == 'TLS', res
        assert 'certificate refused' in res.disconnected['text'], res
    finally:
        srv.stop()


@pytest.mark.parametrize('kind', ['socks5', 'http'])
def test_wss_through_a_proxy(bins, ws_server, kind):
    """The WebSocket layer sits on TLS over the proxy's tunnel: the proxy
    is asked for the URL's host and port by name and sees only TLS."""
    from proxies import HttpConnectProxy, Socks5Proxy
    srv = ws_server
    cls = Socks5Proxy if kind == 'socks5' else HttpConnectProxy
    p = cls({('localhost', srv.https_port): ('127.0.0.1', srv.https_port)})
    try:
        res = iu.probe(bins, srv, '--websocket', wss_url(srv), '--proxy', p.url())
        assert res.rc == 0 and res.ready, res
        assert res.security.startswith('TLS 1.') and '(WebSocket)' in res.security, res
        assert p.requests == [('localhost', srv.https_port)], p.requests
    finally:
        p.close()
