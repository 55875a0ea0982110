"""XMPP over BOSH (XEP-0124 with XEP-0206, epode_conn_set_bosh) against
real Prosody 0.12 (mod_bosh at /http-bind on its HTTP port) and ejabberd
23.01 (mod_bosh at /bosh): login over http:// (loopback) and https://
(the certificate checked for the URL's host and the XMPP domain),
messages both ways with a client on plain TCP, stream management across
HTTP connections cut by the fault proxy, epode-send --bosh, BOSH through
SOCKS5 and HTTP CONNECT proxies, a certificate for another name refused,
and a hostile BOSH server of the test's own (wrong sid, every terminate
condition, HTTP errors, a body that is not a BOSH body, an oversized
body, a server that never answers, absurd session attributes): each
ends with a clear reason and text, and no crash.

Prosody gives no SASL over http:// while it requires encryption, unless
`consider_bosh_secure` (SERVERS.md): set here for the loopback http://
cases. https:// goes to an HTTPS port of each server."""
import http.server
import os
import re
import socketserver
import ssl
import subprocess
import threading
import time
import types
import uuid

import pytest

import integ_util as iu
from faultproxy import FaultProxy

PATHS = {'prosody': '/http-bind', 'ejabberd': '/bosh'}
HTTPBIND = 'http://jabber.org/protocol/httpbind'


def _start(kind, pki, cert='good'):
    return iu.start_http_server(kind, pki, 'bosh', 'consider_bosh_secure',
                                ('/bosh', 'mod_bosh'), cert)


@pytest.fixture(scope='module', params=iu.KINDS)
def bosh_server(request, pki):
    srv = _start(request.param, pki)
    try:
        yield srv
    finally:
        srv.stop()


def http_url(srv, port=None):
    return 'http://127.0.0.1:%d%s' % (port or srv.http_port, PATHS[srv.kind])


def https_url(srv):
    return 'https://localhost:%d%s' % (srv.https_port, PATHS[srv.kind])


def _log_tail(srv, n=3000):
    out = []
    for f in srv._log_files():
        try:
            out.append(open(f, encoding='utf-8', errors='replace').read()[-n:])
        except OSError:
            pass
    return '\n'.join(out)


# ---- against the real servers ---------------------------------------------

@pytest.mark.parametrize('scheme', ['http', 'https'])
def test_bosh_login(bins, bosh_server, scheme, record_id):
    srv = bosh_server
    url = http_url(srv) if scheme == 'http' else https_url(srv)
    res = iu.probe(bins, srv, '--bosh', url, '--verbose', record=record_id)
    assert res.rc == 0, res
    assert res.ready and res.ready.startswith('alice@%s/' % srv.domain), res
    assert res.disconnected['reason'] == 'CLOSED', res
    # the trace names the BOSH endpoint and shows the session (framed as
    # over WebSocket); SCRAM is used (never PLAIN in clear, and no -PLUS:
    # the requests may use several TLS connections)
    assert '[net] BOSH to ' in res.stderr, res
    assert "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'" in res.stderr, res
    assert "[xml-out] <close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>" in res.stderr, res
    assert res.mechanism and res.mechanism.startswith('SCRAM-'), res
    assert not res.mechanism.endswith('-PLUS'), res
    assert 'PLAIN' not in (res.mechanism or ''), res
    if scheme == 'https':
        assert 'TLS_UP' in res.events, res
        assert res.security.startswith('TLS 1.') and '(BOSH)' in res.security, res


def test_bosh_trace_shows_the_bodies(bins, bosh_server):
    """--verbose shows each BOSH request's and answer's <body> tag (rid,
    sid, xmpp:restart, terminate) beside the stanzas: what a user
    debugging BOSH needs to see."""
    res = iu.probe(bins, bosh_server, '--bosh', http_url(bosh_server), '--verbose')
    assert res.rc == 0, res
    out = [l for l in res.stderr.splitlines() if l.startswith('[xml-out] BOSH request <body')]
    got = [l for l in res.stderr.splitlines() if l.startswith('[xml-in] BOSH answer <body')]
    assert out and got, res
    # a tag is shown up to 300 characters ("..." after it): Prosody's
    # session answer, its attributes in any order, may go past that
    assert all(HTTPBIND in l or '...' in l for l in out + got), res
    assert any("xmpp:restart='true'" in l for l in out), res
    assert any("type='terminate'" in l for l in out), res
    assert all(re.search(r"rid='\d+'", l) for l in out), res


def test_bosh_messages_both_ways_with_a_tcp_client(bins, bosh_server, spawn):
    """alice over BOSH, bob over TCP, each message to the other's bare JID.
    Ordered as test_websocket's: bob starts once alice printed "ready",
    and alice answers (--reply) once his message arrived."""
    srv = bosh_server
    d = srv.domain
    tag = uuid.uuid4().hex[:8]
    over_bosh = iu.probe(bins, srv, '--bosh', http_url(srv), '--presence',
                         '--send', 'bob@' + d, 'from-bosh-' + tag, '--reply',
                         '--expect-from', 'bob@' + d, timeout=30, popen=spawn.popen)
    lines, ready = [], threading.Event()

    def pump():
        for line in over_bosh.stdout:
            lines.append(line)
            if line.startswith(('ready ', 'disconnected ')):
                ready.set()
        ready.set()
    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    assert ready.wait(45), 'the BOSH probe printed nothing in 45 s'
    assert any(l.startswith('ready ') for l in lines), ''.join(lines)
    over_tcp = iu.probe(bins, srv, '--presence', '--send', 'alice@' + d,
                        'from-tcp-' + tag, '--expect-from', 'alice@' + d, user='bob',
                        timeout=30, popen=spawn.popen)
    out_tcp, err_tcp = over_tcp.communicate(timeout=60)
    over_bosh.wait(60)
    reader.join(10)
    out_bosh, err_bosh = ''.join(lines), over_bosh.stderr.read()
    assert over_bosh.returncode == 0, (out_bosh, err_bosh[-3000:])
    assert over_tcp.returncode == 0, (out_tcp, err_tcp[-3000:])
    assert 'message bob@%s' % d in out_bosh and 'from-tcp-' + tag in out_bosh, out_bosh
    assert 'message alice@%s' % d in out_tcp and 'from-bosh-' + tag in out_tcp, out_tcp


def _sm_fault(srv, which, proxy, count, label):
    tx, rx = ('bt-%s' % uuid.uuid4().hex[:8], 'br-%s' % uuid.uuid4().hex[:8])
    for u in (tx, rx):
        srv.register(u, 'pw-' + u)
    exe = iu._binary('tests', 'integration', 'sm_fault')
    return subprocess.run([exe, '--server', srv.host, '--port', str(srv.c2s_port),
                           '--ca-file', srv.ca_file,
                           '--%s-bosh' % which, http_url(srv, proxy.port),
                           '--sender', '%s@%s' % (tx, srv.domain), '--sender-password', 'pw-' + tx,
                           '--receiver', '%s@%s' % (rx, srv.domain),
                           '--receiver-password', 'pw-' + rx,
                           '--count', str(count), '--window', '10', '--rate', '200',
                           '--label', label, '--timeout', '90'],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=150,
                          env=dict(os.environ, SM_FAULT_VERBOSE='1'))


@pytest.mark.parametrize('cuts', ['random', 'bytes'])
@pytest.mark.parametrize('which', ['sender', 'receiver'])
def test_bosh_stream_management_survives_cut_http_connections(bosh_server, which, cuts, capsys):
    """The BOSH side goes through the fault proxy in front of the server's
    HTTP port, which cuts its HTTP connections again and again (at random
    times, or after a seeded 6-20 KB, inside requests and answers: enough
    for one answer of the window, so a request is not refused three times
    for its size alone)
    while a burst flows; the other side is on plain TCP. epode resends a
    request whose connection broke with the same rid, and stream
    management covers what a lost session would drop: every message is
    delivered or reported back, none twice."""
    srv = bosh_server
    count = 400
    with FaultProxy(srv.host, srv.http_port, seed=91) as proxy:
        if cuts == 'random':
            proxy.random_cuts(0.4, jitter=0.5)
        else:
            proxy.cut_every(6000, 20000, 'both', 'rst')
        r = _sm_fault(srv, which, proxy, count, 'bosh-%s-%s-%s' % (which, cuts, srv.kind))
        proxy.random_cuts(None)
        proxy.cut_every(None)
        n_cuts = proxy.cuts
    line = [l for l in r.stdout.splitlines() if l.startswith('sm-fault ')]
    assert line, (r.stdout, r.stderr[-3000:], _log_tail(srv))
    with capsys.disabled():
        print('\n' + line[0] + ' (proxy cuts %d)' % n_cuts)
    m = dict(re.findall(r'(\w+)=(\d+)', line[0]))
    assert int(m['duplicates']) == 0, line
    if (int(m['unreported']) or int(m['sent']) != count) and srv.kind == 'prosody' \
            and PROSODY_BOSH_RESUME in _log_tail(srv, 400000):
        pytest.xfail('Prosody 0.12 cannot resume a BOSH session: its log says "%s" (a BOSH '
                     'session has no rawsend); once a request failed three times and the link '
                     'ended, what the server held for the old session is lost: %s'
                     % (PROSODY_BOSH_RESUME, line[0]))
    if (int(m['unreported']) or int(m['sent']) != count) and srv.kind == 'ejabberd' \
            and 'no answer to an ack request' in r.stderr:
        # epode keeps requests 5 ms apart since 1768791/1c54442 (0 stalls
        # in 6 runs of 400 messages, and the whole file passed without
        # this marker); kept for a machine so loaded that two requests 5 ms
        # apart still reach ejabberd out of order
        pytest.xfail('ejabberd 23.01 left a request unanswered for 30 s (the sender\'s '
                     'stream management declared the link dead): it stalls when rid N+1 '
                     'reaches it after rid N+2 (two requests on two connections): %s'
                     % line[0])
    assert int(m['sent']) == count, line
    assert int(m['unreported']) == 0, line
    assert n_cuts >= 3, 'the proxy cut only %d times' % n_cuts
    assert r.returncode == 0, (line, r.stderr[-2000:])


PROSODY_BOSH_RESUME = "mod_smacks.lua:585: attempt to index a nil value (field 'rawsend')"


def test_bosh_session_survives_a_cut_http_connection(bins, bosh_server, spawn):
    """Every HTTP connection of a logged-in BOSH session is reset once (the
    held poll among them): epode sends the broken request again with the
    same rid, the session goes on without a new login (no reconnection is
    enabled in login_probe), and a message sent afterwards arrives."""
    srv = bosh_server
    d = srv.domain
    tag = uuid.uuid4().hex[:8]
    with FaultProxy(srv.host, srv.http_port, seed=5) as proxy:
        alice = iu.probe(bins, srv, '--bosh', http_url(srv, proxy.port), '--presence',
                         '--expect-from', 'bob@' + d, timeout=30, popen=spawn.popen)
        lines = iu.read_line_starting(alice, 'ready ', timeout=20)
        assert any(l.startswith('ready ') for l in lines), lines
        time.sleep(0.5)  # the poll is held by the server now
        assert proxy.cut_all() >= 1
        time.sleep(0.5)
        bob = iu.probe(bins, srv, '--send', 'alice@' + d, 'after-the-cut-' + tag, user='bob',
                       timeout=20)
        assert bob.rc == 0, bob
        res = iu.finish_probe(alice, timeout=40)
    assert res.rc == 0, res
    assert ('bob@' + d, 'after-the-cut-' + tag) in [(f.split('/')[0], b) for f, b in res.messages], res
    assert res.events.count('CONNECTING') == 1, res


def test_bosh_wrong_path_is_a_clear_error(bins, bosh_server):
    url = 'http://127.0.0.1:%d/no-such-endpoint' % bosh_server.http_port
    res = iu.probe(bins, bosh_server, '--bosh', url)
    assert res.rc != 0 and not res.ready, res
    assert res.disconnected['reason'] == 'NETWORK', res
    assert '404' in res.disconnected['text'], res


def test_epode_send_over_bosh(bins, bosh_server, tmp_path):
    pw = iu.write_password_file(tmp_path, 'alice')
    for url in (http_url(bosh_server), https_url(bosh_server)):
        r = subprocess.run([bins['epode_send'], '--bosh', url, '--ca-file', bosh_server.ca_file,
                            '--jid', 'alice@' + bosh_server.domain, '--password-file', pw,
                            'bob@' + bosh_server.domain, 'over ' + url],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, (url, r.stdout, r.stderr[-2000:])


def test_epode_send_bosh_with_websocket_is_bad_usage(bins, tmp_path):
    pw = iu.write_password_file(tmp_path, 'alice')
    r = subprocess.run([bins['epode_send'], '--bosh', 'http://127.0.0.1:1/b',
                        '--websocket', 'ws://127.0.0.1:1/w', '--jid', 'alice@localhost',
                        '--password-file', pw, 'bob@localhost', 'x'],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    assert r.returncode == 64 and 'exclude each other' in r.stderr, r


def test_https_certificate_for_another_name_is_refused(bins, pki):
    """The HTTPS endpoint shows a certificate for another name: refused
    (reason TLS), whatever the XMPP session behind it would do."""
    srv = _start('prosody', pki, cert='wrongname')
    try:
        res = iu.probe(bins, srv, '--bosh', https_url(srv))
        assert res.rc != 0 and not res.ready, res
        assert res.disconnected['reason'] == 'TLS', res
    finally:
        srv.stop()


def test_https_obeys_the_connections_tls_versions(bins, bosh_server):
    """epode_conn_set_tls_max_version()/min apply to BOSH's HTTPS requests
    as to any link: capped at 1.2 the security line says TLS 1.2."""
    res = iu.probe(bins, bosh_server, '--bosh', https_url(bosh_server), '--tls-max', '1.2')
    assert res.rc == 0 and res.ready, res
    assert res.security.startswith('TLS 1.2 (BOSH)'), res


def test_https_certificate_from_an_untrusted_ca_is_refused(bins, bosh_server):
    """Without the test CA (the system's trust store), the HTTPS endpoint's
    certificate does not verify: refused with reason TLS, the certificate
    callback not asked (BOSH does not offer it)."""
    res = iu.probe(bins, bosh_server, '--bosh', https_url(bosh_server), '--accept-untrusted',
                   ca_file=None)
    assert res.rc != 0 and not res.ready, res
    assert res.disconnected['reason'] == 'TLS', res
    # our words first, not only curl's "CAfile: none CRLfile: none"
    assert 'certificate refused' in res.disconnected['text'], res
    assert res.cert_callbacks == [], res


@pytest.mark.parametrize('how', ['name', '127-name', 'proxy'])
def test_http_to_a_non_loopback_address_is_refused(bins, bosh_server, how):
    """http:// (no TLS) is for loopback only: a name that is not a loopback
    address, a name that merely starts with "127." (it was taken for one),
    or 127.0.0.1 through a proxy (where it goes cannot be seen) is refused
    before any request (ENOTLS, reason TLS)."""
    from proxies import Socks5Proxy
    port = bosh_server.http_port
    p = None
    try:
        if how == 'proxy':
            p = Socks5Proxy({('127.0.0.1', port): ('127.0.0.1', port)})
            args = ['--bosh', 'http://127.0.0.1:%d/http-bind' % port, '--proxy', p.url()]
        else:
            host = 'xmpp.invalid' if how == 'name' else '127.0.0.1.attacker.invalid'
            args = ['--bosh', 'http://%s:%d/http-bind' % (host, port)]
        res = iu.probe(bins, bosh_server, *args, timeout=10)
        assert res.rc != 0 and not res.ready, res
        assert res.disconnected['reason'] == 'TLS', res
        assert res.disconnected['error'] == 'NOTLS', res
        if p:
            assert p.requests == [], p.requests
    finally:
        if p:
            p.close()


@pytest.mark.parametrize('kind', ['socks5', 'http'])
def test_bosh_through_a_proxy(bins, bosh_server, kind):
    """The HTTP requests go over TLS through the proxy's tunnel: the proxy
    is asked for the URL's host and port by name (never resolved locally)
    and sees only TLS."""
    from proxies import HttpConnectProxy, Socks5Proxy
    srv = bosh_server
    cls = Socks5Proxy if kind == 'socks5' else HttpConnectProxy
    p = cls({('localhost', srv.https_port): ('127.0.0.1', srv.https_port)})
    try:
        res = iu.probe(bins, srv, '--bosh', https_url(srv), '--proxy', p.url())
        assert res.rc == 0 and res.ready, res
        assert res.security.startswith('TLS 1.') and 'BOSH' in res.security, res
        assert p.requests and set(p.requests) == {('localhost', srv.https_port)}, p.requests
    finally:
        p.close()


# ---- a hostile BOSH server of our own -------------------------------------

STREAM_FEATURES = ("<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
                   "<mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>")


def _session(sid="s-1", requests="2", extra="", wait='5', hold='1'):
    attrs = "wait='%s' polling='0' inactivity='30' hold='%s' ver='1.11' from='localhost' " \
            "xmpp:version='1.0' xmlns:xmpp='urn:xmpp:xbosh' " \
            "xmlns:stream='http://etherx.jabber.org/streams'" % (wait, hold)
    if sid is not None:
        attrs += " sid='%s'" % sid
    if requests is not None:
        attrs += " requests='%s'" % requests
    return "<body xmlns='%s' %s%s>%s</body>" % (HTTPBIND, attrs, extra, STREAM_FEATURES)


def _terminate(cond, inner=""):
    return "<body xmlns='%s' type='terminate' condition='%s'>%s</body>" % (HTTPBIND, cond, inner)


class HostileBosh:
    """An HTTP/1.1 server on 127.0.0.1 that answers BOSH requests from a
    script: `answers` is a list of callables, one per request in arrival
    order (the last one repeats); each returns (status, body bytes) or
    None to never answer. Records every request body in `requests`."""

    def __init__(self, answers, tls=None):
        self.answers = list(answers)
        self.requests = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get('Content-Length') or 0)
                body = self.rfile.read(n).decode('utf-8', 'replace')
                with owner.lock:
                    owner.requests.append(body)
                    i = min(len(owner.requests), len(owner.answers)) - 1
                    answer = owner.answers[i]
                got = answer(body)
                if got is None:
                    owner.stop.wait(60)
                    self.close_connection = True
                    return
                status, data = got
                if isinstance(data, str):
                    data = data.encode('utf-8')
                self.send_response(status)
                self.send_header('Content-Type', 'text/xml; charset=utf-8')
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except OSError:
                    pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.httpd = Server(('127.0.0.1', 0), Handler)
        self.port = self.httpd.server_address[1]
        if tls:  # (cert, key): HTTPS
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self):
        return 'http://127.0.0.1:%d/http-bind' % self.port

    def close(self):
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


PLAIN_FEATURES = ("<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
                  "<mechanism>PLAIN</mechanism></mechanisms></stream:features>")


@pytest.mark.parametrize('kind', ['direct', 'socks5', 'http'])
def test_certificate_valid_for_the_url_but_not_the_domain_is_refused(bins, pki, kind):
    """An HTTPS endpoint at wrong.invalid with a certificate valid for
    wrong.invalid only, offering PLAIN to alice@localhost: refused
    (ECERT, reason TLS) before any credential reaches it, directly and
    through either proxy, and not retried into a loop. Through an HTTP
    CONNECT proxy the domain check once ran at the first response header,
    which is the proxy's own "200 Connection established" before any TLS:
    the <auth/> went out, once per reconnection (the diff review)."""
    from dns_responder import TYPE_A, DnsResponder
    from proxies import HttpConnectProxy, Socks5Proxy
    session = ("<body xmlns='%s' sid='s-1' requests='2' wait='5' hold='1' from='localhost' "
               "xmpp:version='1.0' xmlns:xmpp='urn:xmpp:xbosh' "
               "xmlns:stream='http://etherx.jabber.org/streams'>%s</body>"
               % (HTTPBIND, PLAIN_FEATURES))
    srv = HostileBosh([_xml(200, session), _xml(200, "<body xmlns='%s'/>" % HTTPBIND)],
                      tls=pki.server_pair('wrongname'))
    p = dns = None
    try:
        url = 'https://wrong.invalid:%d/http-bind' % srv.port
        if kind == 'direct':
            dns = DnsResponder({('wrong.invalid', TYPE_A): ['127.0.0.1']})
            extra = ['--dns', dns.address]
        else:
            cls = Socks5Proxy if kind == 'socks5' else HttpConnectProxy
            p = cls({('wrong.invalid', srv.port): ('127.0.0.1', srv.port)})
            extra = ['--proxy', p.url()]
        target = types.SimpleNamespace(host='127.0.0.1', c2s_port=iu.closed_port(),
                                       ca_file=pki.ca_cert, domain='localhost', kind='hostile')
        res = iu.probe(bins, target, '--bosh', url, '--sasl', 'PLAIN', *extra, timeout=10)
        assert res.rc != 0 and not res.ready, res
        assert res.disconnected['reason'] == 'TLS', res
        assert res.disconnected['error'] == 'CERT', res
        assert not any('<auth' in r for r in srv.requests), srv.requests
    finally:
        if p:
            p.close()
        if dns:
            dns.close()
        srv.close()


def _fake_target():
    return types.SimpleNamespace(host='127.0.0.1', c2s_port=iu.closed_port(), ca_file=None,
                                 domain='localhost', kind='hostile')


def _after_session(answer):
    """The session is created properly, then `answer` for what follows."""
    return [lambda body: (200, _session()), lambda body: answer]


def _xml(status, body):
    return lambda _: (status, body)


TERMINATES = ['host-unknown', 'item-not-found', 'policy-violation', 'system-shutdown',
              'remote-connection-failed', 'bad-request']

HOSTILE = {
    # the session's first answer says the session is over
    **{'terminate-' + c: ([_xml(200, _terminate(c))], 'NETWORK', c) for c in TERMINATES},
    'see-other-uri': ([_xml(200, _terminate('see-other-uri',
                                            '<uri>https://elsewhere.example/bosh</uri>'))],
                      'NETWORK', 'https://elsewhere.example/bosh'),
    # ... or after a proper session creation
    'terminate-later': (_after_session((200, _terminate('system-shutdown'))),
                        'NETWORK', 'system-shutdown'),
    'http-404': ([_xml(404, 'no such session')], 'NETWORK', '404'),
    'http-500': ([_xml(500, 'internal error')], 'NETWORK', '500'),
    'http-404-later': (_after_session((404, '')), 'NETWORK', '404'),
    'not-a-body': ([_xml(200, '<html><body>hello</body></html>')], 'PROTOCOL', None),
    'body-in-another-namespace': ([_xml(200, "<body xmlns='urn:example:not-bosh' sid='x'/>")],
                                  'PROTOCOL', None),
    'not-xml': ([_xml(200, 'this is not XML <<<')], 'PROTOCOL', None),
    'wrong-sid': (_after_session((200, "<body xmlns='%s' sid='someone-else'>"
                                        "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
                                        "<not-authorized/></failure></body>" % HTTPBIND)),
                  'PROTOCOL', None),
    'missing-sid': ([_xml(200, _session(sid=None))], 'PROTOCOL', None),
    'requests-0': ([_xml(200, _session(requests='0'))], 'PROTOCOL', None),
    'requests-65': ([_xml(200, _session(requests='65'))], 'PROTOCOL', None),
    'requests-not-a-number': ([_xml(200, _session(requests='two'))], 'PROTOCOL', None),
    'wait-3600': ([_xml(200, _session(wait='3600'))], 'PROTOCOL', None),
    'hold-0': ([_xml(200, _session(hold='0'))], 'PROTOCOL', None),
    'sid-empty': ([_xml(200, _session(sid=''))], 'PROTOCOL', None),
    'sid-huge': ([_xml(200, _session(sid='x' * 100000))], 'PROTOCOL', None),
}


@pytest.mark.parametrize('case', sorted(HOSTILE))
def test_hostile_bosh_server(bins, case):
    answers, reason, text = HOSTILE[case]
    srv = HostileBosh(answers)
    try:
        res = iu.probe(bins, _fake_target(), '--bosh', srv.url(), timeout=10)
    finally:
        srv.close()
    assert res.rc == 1 and not res.ready, res
    assert res.disconnected, res
    assert res.disconnected['reason'] == reason, res
    assert res.disconnected['text'] not in ('', '-'), res
    if text:
        assert text in res.disconnected['text'], res
    assert srv.requests and "xmlns='%s'" % HTTPBIND in srv.requests[0].replace('"', "'"), \
        srv.requests
    assert 'AddressSanitizer' not in res.stderr and 'runtime error' not in res.stderr, res


def test_hostile_bosh_oversized_body(bins):
    """An answer larger than the larger of 4 MiB and twice the stanza limit
    ends the link (EPROTOCOL, the text names the limit), without reading it
    all into a stanza."""
    big = _session().replace(STREAM_FEATURES, STREAM_FEATURES + ' ' * (5 << 20))
    srv = HostileBosh([_xml(200, big)])
    try:
        res = iu.probe(bins, _fake_target(), '--bosh', srv.url(), timeout=10)
    finally:
        srv.close()
    assert res.rc == 1 and not res.ready, res
    assert res.disconnected['reason'] == 'PROTOCOL', res
    assert res.disconnected['error'] == 'PROTOCOL', res
    assert 'limit' in res.disconnected['text'], res


def test_hostile_bosh_server_that_never_answers(bins):
    """The session request is read and never answered: the attempt ends
    in bounded time (the login timeout, or the request's own wait bound),
    with a clear reason."""
    srv = HostileBosh([lambda body: None])
    try:
        t0 = time.monotonic()
        res = iu.probe(bins, _fake_target(), '--bosh', srv.url(), timeout=5)
        took = time.monotonic() - t0
    finally:
        srv.close()
    assert res.rc == 1 and not res.ready, res
    assert res.disconnected['reason'] in ('TIMEOUT', 'NETWORK'), res
    assert res.disconnected['text'] not in ('', '-'), res
    assert took < 20, (took, res)
