"""Logins through proxies (epode_conn_set_proxy), end to end: a SOCKS5 and
an HTTP CONNECT proxy of the tests' own (proxies.py) on 127.0.0.1 in front
of real Prosody and ejabberd, with STARTTLS and direct TLS, credentials
right and wrong, refusals mapped to disconnect reasons, no DNS query for
the XMPP domain (a DNS responder of the test's own must hear nothing),
and stream-management resumption across cuts of the proxied links."""
import re
import subprocess
import uuid

import pytest

import integ_util as iu
from dns_responder import DnsResponder
from faultproxy import FaultProxy
from proxies import HttpConnectProxy, Socks5Proxy

# Not "localhost": epode never asks DNS about it (RFC 6761), so a leak
# could not show. example.test is in the test certificate's names.
DOMAIN = 'example.test'


@pytest.fixture(scope='module', params=iu.KINDS)
def server(request, pki):
    srv = iu.start_server(request.param, pki, domain=DOMAIN)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def dns():
    d = DnsResponder({})
    yield d
    d.close()


def routes(srv):
    """The proxy resolves the XMPP domain itself: to the server's ports."""
    return {(DOMAIN, 5222): ('127.0.0.1', srv.c2s_port),
            (DOMAIN, 5223): ('127.0.0.1', srv.direct_tls_port)}


def via(bins, srv, proxy_url, dns, *args, direct_tls=False, **kw):
    """A login with no --server: epode asks the proxy for the domain."""
    return iu.probe(bins, srv, '--proxy', proxy_url, '--dns', dns.address, *args,
                    no_server=True, direct_tls=direct_tls, **kw)


@pytest.mark.parametrize('kind', ['socks5', 'http'])
@pytest.mark.parametrize('direct', [False, True], ids=['starttls', 'direct-tls'])
def test_login_through_proxy(bins, server, dns, kind, direct, record_id):
    cls = Socks5Proxy if kind == 'socks5' else HttpConnectProxy
    p = cls(routes(server))
    try:
        res = via(bins, server, p.url(), dns, direct_tls=direct, record=record_id)
        iu.assert_logged_in(res, server)
        assert res.security.startswith('TLS 1.3 (%s)' % ('direct' if direct else 'STARTTLS')), res
        # the proxy was asked for the domain by name, on the default port
        assert p.requests == [(DOMAIN, 5223 if direct else 5222)], p.requests
        # and nothing was asked of DNS: no SRV, no A/AAAA for the domain
        assert dns.queries == [], dns.queries
    finally:
        p.close()


@pytest.mark.parametrize('kind', ['socks5', 'http'])
def test_proxy_credentials(bins, server, dns, kind):
    cls = Socks5Proxy if kind == 'socks5' else HttpConnectProxy
    p = cls(routes(server), user='proxyuser', password='pr0xy pass')
    try:
        res = via(bins, server, p.url('proxyuser', 'pr0xy%20pass'), dns)
        iu.assert_logged_in(res, server)
        res = via(bins, server, p.url('proxyuser', 'wrong'), dns)
        assert res.rc != 0 and not res.ready, res
        assert 'reason=AUTH error=AUTH' in res.stdout, res
        assert 'refused our user name and password' in res.stdout, res
        # without credentials: the proxy wants some
        scheme = 'socks5' if kind == 'socks5' else 'http'
        res = via(bins, server, '%s://%s' % (scheme, p.address), dns)
        assert 'reason=AUTH error=AUTH' in res.stdout, res
        assert 'requires authentication' in res.stdout, res
        assert p.auth_failures >= 1
        assert dns.queries == []
    finally:
        p.close()


@pytest.mark.parametrize('kind', ['socks5', 'http'])
def test_proxy_refusing_the_destination_is_a_network_error(bins, server, dns, kind):
    cls = Socks5Proxy if kind == 'socks5' else HttpConnectProxy
    p = cls({})  # knows no route to example.test
    try:
        res = via(bins, server, p.url(), dns, '--timeout', '5')
        assert not res.ready, res
        assert 'reason=NETWORK error=NET' in res.stdout, res
        want = ('host unreachable (reply 4)' if kind == 'socks5'
                else 'refused to connect to example.test:5222 (403 Forbidden)')
        assert want in res.stdout, res
        assert dns.queries == []
    finally:
        p.close()


def test_explicit_server_through_socks5(bins, server, dns):
    """--server/--port: the proxy is asked for exactly those."""
    p = Socks5Proxy({})
    try:
        res = iu.probe(bins, server, '--proxy', p.url(), '--dns', dns.address)
        iu.assert_logged_in(res, server)
        assert p.requests == [(server.host, server.c2s_port)], p.requests
        assert dns.queries == []
    finally:
        p.close()


def test_bad_proxy_url_is_refused_when_set(bins, server, dns):
    res = via(bins, server, 'socks4://127.0.0.1:1', dns)
    assert res.rc != 0 and not res.ready, res
    assert 'proxy' in (res.stdout + res.stderr), res


@pytest.mark.parametrize('kind', ['socks5', 'http'])
def test_sm_resumption_through_a_proxy_across_cuts(bins, server, kind):
    """Both clients through the proxy, their links cut behind it."""
    tx, rx = ('pxt-%s' % uuid.uuid4().hex[:8], 'pxr-%s' % uuid.uuid4().hex[:8])
    for u in (tx, rx):
        server.register(u, 'pw-' + u)
    exe = iu._binary('tests', 'integration', 'sm_fault')
    with FaultProxy(server.host, server.c2s_port, seed=77) as fault:
        cls = Socks5Proxy if kind == 'socks5' else HttpConnectProxy
        p = cls({(DOMAIN, 5222): ('127.0.0.1', fault.port)})
        try:
            fault.random_cuts(0.3, jitter=0.5)
            r = subprocess.run([exe, '--server', DOMAIN, '--port', '5222',
                                '--proxy', p.url(), '--ca-file', server.ca_file,
                                '--sender', '%s@%s' % (tx, server.domain),
                                '--sender-password', 'pw-' + tx,
                                '--receiver', '%s@%s' % (rx, server.domain),
                                '--receiver-password', 'pw-' + rx,
                                '--count', '800', '--window', '10', '--rate', '400',
                                '--label', server.kind + '-' + kind, '--timeout', '90'],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=150)
            fault.random_cuts(None)
            cuts = fault.cuts
        finally:
            p.close()
    line = [l for l in r.stdout.splitlines() if l.startswith('sm-fault ')]
    assert line, (r.stdout, r.stderr[-3000:])
    m = dict(re.findall(r'(\w+)=(\d+)', line[0]))
    assert int(m['sent']) == 800, line
    assert int(m['unreported']) == 0, line
    assert int(m['duplicates']) == 0, line
    assert cuts >= 2, 'the proxy cut only %d times' % cuts
    # every reconnection went through the proxy, by name
    assert len(p.requests) >= 2 + cuts // 2, (len(p.requests), cuts)
    assert set(p.requests) == {(DOMAIN, 5222)}
    assert r.returncode == 0, (line, r.stderr[-2000:])


@pytest.mark.parametrize('kind', ['socks5', 'http'])
def test_epode_send_through_proxy(bins, server, dns, kind, tmp_path):
    """The tools' --proxy: epode-send delivers through either proxy, and a
    proxy refusing the credentials is one clear line on stderr."""
    cls = Socks5Proxy if kind == 'socks5' else HttpConnectProxy
    p = cls(routes(server), user='u', password='p')
    pw = tmp_path / 'pw'
    pw.write_text(iu.USERS['alice'] + '\n')
    try:
        base = [bins['epode_send'], '--ca-file', server.ca_file,
                '--jid', 'alice@' + DOMAIN, '--password-file', str(pw)]
        r = subprocess.run(base + ['--proxy', p.url(), 'bob@' + DOMAIN, 'via', kind],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r
        assert p.requests == [(DOMAIN, 5222)], p.requests
        r = subprocess.run(base + ['--proxy', p.url('u', 'bad'), 'bob@' + DOMAIN, 'x'],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
        assert r.returncode == 1, r
        assert len(r.stderr.splitlines()) == 1, r.stderr
        assert 'refused our user name and password' in r.stderr, r.stderr
        assert 'bad' not in r.stderr.replace('bad --proxy', ''), r.stderr  # no password echoed
    finally:
        p.close()
