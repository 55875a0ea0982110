"""Tests of the server harness: /usr/bin/python3 -m pytest -q tests/servers"""

import asyncio
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xmppservers as xs  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, 'xmppservers.py')
PYTHON = '/usr/bin/python3'
KINDS = [xs.Prosody, xs.Ejabberd]
IDS = ['prosody', 'ejabberd']
TLS_NS = 'urn:ietf:params:xml:ns:xmpp-tls'

EXPECTED_MECHS = {
    'prosody': {'SCRAM-SHA-1', 'SCRAM-SHA-256'},
    'ejabberd': {'SCRAM-SHA-1', 'SCRAM-SHA-256', 'SCRAM-SHA-512',
                 'SCRAM-SHA-1-PLUS', 'SCRAM-SHA-256-PLUS', 'SCRAM-SHA-512-PLUS'},
}
START_LIMIT = {'prosody': 5.0, 'ejabberd': 10.0}
STOP_LIMIT = 5.0

TIMINGS = []     # (label, start seconds, stop seconds)


def _record(srv, label=''):
    TIMINGS.append(('%s%s' % (srv.kind, label), srv.start_seconds, srv.stop_seconds))


@pytest.fixture(scope='session', autouse=True)
def _timing_report(request):
    yield
    tr = request.config.pluginmanager.get_plugin('terminalreporter')
    capman = request.config.pluginmanager.get_plugin('capturemanager')
    if tr is None or capman is None or not TIMINGS:
        return
    with capman.global_and_fixture_disabled():
        tr.write_line('')
        tr.write_line('server start/stop times (seconds):')
        for kind in IDS:
            rows = [(s, t) for label, s, t in TIMINGS
                    if label.startswith(kind) and s is not None and t is not None]
            if rows:
                starts = sorted(s for s, _ in rows)
                stops = sorted(t for _, t in rows)
                tr.write_line('  %-8s n=%-2d start min %.2f median %.2f max %.2f | '
                              'stop min %.2f median %.2f max %.2f' % (
                                  kind, len(rows), starts[0], starts[len(starts) // 2], starts[-1],
                                  stops[0], stops[len(stops) // 2], stops[-1]))


@pytest.fixture(scope='session')
def pki(tmp_path_factory):
    return xs.make_pki(str(tmp_path_factory.mktemp('pki')))


@pytest.fixture(scope='module', params=KINDS, ids=IDS)
def server(request, pki):
    srv = request.param(pki=pki, users={'alice': 'wonder land:1'})
    srv.start()
    yield srv
    srv.stop()
    _record(srv, ' (shared)')


def _ctx(ca_file, max_version=None):
    return xs.client_tls_context(ca_file, max_version)


def _openssl_text(cert):
    return subprocess.run(['openssl', 'x509', '-in', cert, '-noout', '-text'],
                          check=True, capture_output=True, text=True).stdout


def _openssl_verify(ca, cert):
    return subprocess.run(['openssl', 'verify', '-CAfile', ca, cert],
                          capture_output=True, text=True).returncode == 0


def _port_closed(port):
    s = socket.socket()
    try:
        s.settimeout(1)
        return s.connect_ex((xs.HOST, port)) != 0
    finally:
        s.close()


# ---------------------------------------------------------------------------
# PKI
# ---------------------------------------------------------------------------

def test_pki(pki):
    text = _openssl_text(pki.server_cert)
    for name in ('DNS:localhost', 'DNS:*.localhost', 'DNS:example.test', 'IP Address:127.0.0.1'):
        assert name in text
    assert 'ASN1 OID: prime256v1' in text
    assert _openssl_verify(pki.ca_cert, pki.server_cert)
    assert _openssl_verify(pki.ca_cert, pki.wrongname_cert)
    assert 'DNS:wrong.invalid' in _openssl_text(pki.wrongname_cert)
    assert not _openssl_verify(pki.ca_cert, pki.untrusted_cert)
    assert _openssl_verify(pki.untrusted_ca_cert, pki.untrusted_cert)
    assert 'DNS:localhost' in _openssl_text(pki.untrusted_cert)
    client = _openssl_text(pki.client_cert)
    assert 'CN = alice@localhost' in client
    assert re.search(r'othername: (XmppAddr|1\.3\.6\.1\.5\.5\.7\.8\.5)[:;]+alice@localhost', client), client
    assert 'TLS Web Client Authentication' in client
    assert _openssl_verify(pki.ca_cert, pki.client_cert)
    # reused when complete
    again = xs.make_pki(pki.dir)
    assert xs._read(again.ca_cert) == xs._read(pki.ca_cert)


# ---------------------------------------------------------------------------
# one shared server per kind
# ---------------------------------------------------------------------------

def test_starttls_offered(server):
    feats, version = xs.probe_features(server.host, server.c2s_port, server.domain, 'plain')
    assert version is None
    assert '<starttls' in feats and TLS_NS in feats


def test_listeners_loopback_only(server):
    held = xs._socket_inodes_of(server.descendants())
    listening = []
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        with open(table) as f:
            next(f)
            for line in f:
                parts = line.split()
                if parts[3] == '0A' and parts[9] in held:
                    listening.append((table, parts[1]))
    assert listening
    for table, local in listening:
        assert table == '/proc/net/tcp' and local.startswith('0100007F:'), listening
    ports = {int(local.split(':')[1], 16) for _, local in listening}
    assert {server.c2s_port, server.direct_tls_port} <= ports


def test_direct_tls_verified(server):
    ctx = _ctx(server.ca_file)
    with socket.create_connection((server.host, server.direct_tls_port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname='localhost') as tls:
            cert = tls.getpeercert()
            assert ('DNS', 'localhost') in cert['subjectAltName']
            assert tls.version() in ('TLSv1.2', 'TLSv1.3')
    feats, version = xs.probe_features(server.host, server.direct_tls_port, server.domain, 'direct', ctx)
    assert version
    assert TLS_NS not in feats     # no STARTTLS inside TLS
    assert EXPECTED_MECHS[server.kind] <= set(xs.sasl_mechanisms(feats))


def test_sasl_mechanisms_after_starttls(server):
    feats, version = xs.probe_features(server.host, server.c2s_port, server.domain, 'starttls',
                                       _ctx(server.ca_file))
    mechs = set(xs.sasl_mechanisms(feats))
    assert EXPECTED_MECHS[server.kind] <= mechs, mechs
    print(server.kind, version, sorted(mechs))


class _Client:
    """A slixmpp client that only talks to 127.0.0.1 and verifies the
    certificate against the test CA for the JID's domain."""

    @staticmethod
    def login(server, user, password, timeout=20):
        r = _Client.run(server, user, password, timeout=timeout)
        return r['status'], r['detail']

    @staticmethod
    def run(server, user, password, action=None, timeout=20):
        """Log in; await action(client) if given. Returns {status, detail,
        features (texts of every <stream:features> seen), result}."""
        import slixmpp
        seen = []

        class C(slixmpp.ClientXMPP):
            async def get_dns_records(self, domain, port=None):
                return [(domain, server.host, server.c2s_port)]

            async def _handle_stream_features(self, features):
                seen.append(str(features))
                return await super()._handle_stream_features(features)

        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            c = C('%s@%s/test' % (user, server.domain), password)
            c.register_plugin('xep_0030')
            c.ca_certs = server.ca_file
            c.default_domain = server.domain
            done = loop.create_future()

            def finish(result):
                if not done.done():
                    done.set_result(result)

            async def on_start(_event):
                try:
                    c.send_presence()
                    await c.get_roster()
                    out = (await action(c)) if action else None
                    finish(('ok', str(c.boundjid), out))
                except Exception as e:   # noqa: BLE001
                    finish(('error', repr(e), None))
            c.add_event_handler('session_start', on_start)
            c.add_event_handler('failed_auth', lambda *_: finish(('failed_auth', None, None)))
            c.add_event_handler('connection_failed', lambda e: finish(('connection_failed', str(e), None)))
            c.connect(address=(server.host, server.c2s_port))
            result = loop.run_until_complete(asyncio.wait_for(done, timeout))
            c.disconnect()
            try:
                loop.run_until_complete(asyncio.wait_for(c.disconnected, 5))
            except (asyncio.TimeoutError, Exception):   # noqa: BLE001
                pass
            return {'status': result[0], 'detail': result[1], 'result': result[2], 'features': seen}
        finally:
            for task in asyncio.all_tasks(loop):
                task.cancel()
            try:
                loop.run_until_complete(asyncio.sleep(0))
            except Exception:   # noqa: BLE001
                pass
            loop.close()
            asyncio.set_event_loop(None)


def test_slixmpp_login(server):
    status, jid = _Client.login(server, 'alice', 'wonder land:1')
    assert status == 'ok', jid
    assert jid.startswith('alice@%s/' % server.domain)


def test_features_enabled(server):
    """Roster versioning, XEP-0198, carbons, ping, version, disco and the MUC
    component are on."""
    async def action(c):
        info = await c['xep_0030'].get_info(jid=server.domain)
        muc = await c['xep_0030'].get_info(jid=server.muc_domain)
        return (set(info['disco_info']['features']), set(muc['disco_info']['features']))
    r = _Client.run(server, 'alice', 'wonder land:1', action)
    assert r['status'] == 'ok', r
    server_features, muc_features = r['result']
    for var in ('urn:xmpp:carbons:2', 'urn:xmpp:ping', 'jabber:iq:version',
                'http://jabber.org/protocol/disco#info'):
        assert var in server_features, sorted(server_features)
    assert 'http://jabber.org/protocol/muc' in muc_features
    after_auth = r['features'][-1]
    assert 'urn:xmpp:sm:3' in after_auth, after_auth
    assert 'urn:xmpp:features:rosterver' in ''.join(r['features']), r['features']


def test_register_then_login(server):
    server.register('bob', 'b0b')
    server.register('bob', 'bob-2')          # again: sets the password
    assert server.users['bob'] == 'bob-2'
    assert _Client.login(server, 'bob', 'bob-2')[0] == 'ok'
    assert _Client.login(server, 'bob', 'b0b')[0] == 'failed_auth'


# ---------------------------------------------------------------------------
# lifecycle
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('cls', KINDS, ids=IDS)
def test_start_stop_leaves_nothing(cls, pki):
    epmd_before = set(xs._epmd_pids().items())
    srv = cls(pki=pki)
    srv.start()
    state, pid, ports = srv.state_dir, srv.pid, (srv.c2s_port, srv.direct_tls_port)
    tree = srv.descendants()
    assert pid in tree
    if cls is xs.Ejabberd:
        assert 'erl_child_setup' in {xs._comm(p) for p in tree}
    srv.stop()
    _record(srv)
    assert not any(xs._alive(p, st) for p, st in tree.items())
    assert not os.path.exists(state)
    assert all(_port_closed(p) for p in ports)
    assert set(xs._epmd_pids().items()) <= epmd_before
    assert srv.start_seconds < START_LIMIT[srv.kind], srv.start_seconds
    assert srv.stop_seconds < STOP_LIMIT, srv.stop_seconds
    srv.stop()          # idempotent


@pytest.mark.parametrize('cls', KINDS, ids=IDS)
def test_port_clash_is_retried(cls, pki, monkeypatch):
    """Ports are picked free and then bound by the server: if someone takes
    one in between, start() notices and retries with new ports."""
    blocker = socket.socket()
    blocker.bind((xs.HOST, 0))
    blocker.listen()
    taken = blocker.getsockname()[1]
    real, calls = xs._free_ports, []

    def fake(n):
        ports = real(n)
        calls.append(ports)
        if len(calls) == 1:
            ports[0] = taken          # the c2s port
        return ports
    monkeypatch.setattr(xs, '_free_ports', fake)
    try:
        with cls(pki=pki, start_timeout=15) as srv:
            assert len(calls) == 2 and srv.c2s_port != taken
            xs.probe_features(srv.host, srv.c2s_port, srv.domain, 'plain')
    finally:
        blocker.close()


@pytest.mark.parametrize('cls,module', [(xs.Prosody, 'no_such_module'), (xs.Ejabberd, 'mod_no_such')],
                         ids=IDS)
def test_start_failure_is_clear_and_fast(cls, module, pki):
    srv = cls(pki=pki, modules=[module], start_timeout=20)
    t0 = time.monotonic()
    with pytest.raises(xs.ServerError) as err:
        srv.start()
    assert time.monotonic() - t0 < 10
    msg = str(err.value)
    assert module in msg and '--- tail of' in msg, msg
    assert srv.proc is None and not os.path.exists('/proc/%d' % srv.pid)


@pytest.mark.parametrize('cls', KINDS, ids=IDS)
def test_two_at_once(cls, pki):
    with cls(pki=pki) as a, cls(pki=pki) as b:
        assert a.state_dir != b.state_dir
        assert {a.c2s_port, a.direct_tls_port}.isdisjoint({b.c2s_port, b.direct_tls_port})
        for srv in (a, b):
            feats, _ = xs.probe_features(srv.host, srv.c2s_port, srv.domain, 'starttls', _ctx(srv.ca_file))
            assert EXPECTED_MECHS[srv.kind] <= set(xs.sasl_mechanisms(feats))
    _record(a)
    _record(b)
    assert not os.path.exists(a.state_dir) and not os.path.exists(b.state_dir)


@pytest.mark.parametrize('cls', KINDS, ids=IDS)
def test_state_dir_is_kept_and_reused(cls, pki, tmp_path):
    state = str(tmp_path / 'state')
    with cls(state_dir=state, pki=pki, users={'carol': 'c'}) as srv:
        first_ports = (srv.c2s_port, srv.direct_tls_port)
    _record(srv)
    assert os.path.isdir(state)
    with cls(state_dir=state, pki=pki) as srv:     # the account survives a restart
        assert _Client.login(srv, 'carol', 'c')[0] == 'ok'
        assert (srv.c2s_port, srv.direct_tls_port) != first_ports
    _record(srv)


@pytest.mark.parametrize('cert', ['untrusted', 'wrongname'])
@pytest.mark.parametrize('cls', KINDS, ids=IDS)
def test_bad_certificates_fail_verification(cls, cert, pki):
    with cls(pki=pki, cert=cert) as srv:
        for mode, port in (('starttls', srv.c2s_port), ('direct', srv.direct_tls_port)):
            with pytest.raises(ssl.SSLCertVerificationError) as err:
                xs.probe_features(srv.host, port, srv.domain, mode, _ctx(srv.ca_file))
            if cert == 'untrusted':
                assert err.value.verify_code in (19, 20), err.value   # self-signed in chain / unknown issuer
                ok_ctx = _ctx(pki.untrusted_ca_cert)                  # right CA: fine
            else:
                assert err.value.verify_code == 62, err.value         # hostname mismatch
                ok_ctx = _ctx(srv.ca_file)
                ok_ctx.check_hostname = False                          # chain itself is fine
            feats, _ = xs.probe_features(srv.host, port, srv.domain, mode, ok_ctx)
            assert xs.sasl_mechanisms(feats)
    _record(srv, ' (%s)' % cert)


@pytest.mark.parametrize('cls', KINDS, ids=IDS)
def test_tls_max_version_12(cls, pki):
    with cls(pki=pki, tls_max_version='1.2') as srv:
        for mode, port in (('starttls', srv.c2s_port), ('direct', srv.direct_tls_port)):
            feats, version = xs.probe_features(srv.host, port, srv.domain, mode, _ctx(srv.ca_file))
            assert version == 'TLSv1.2'
            mechs = set(xs.sasl_mechanisms(feats))
            assert {'SCRAM-SHA-1-PLUS', 'SCRAM-SHA-256-PLUS'} <= mechs, mechs
    _record(srv, ' (tls1.2)')


def _inband_register(srv, user, password):
    """XEP-0077 over a raw STARTTLS stream; returns the <iq/> answer."""
    deadline = time.monotonic() + 10
    raw = socket.create_connection((srv.host, srv.c2s_port), timeout=10)
    try:
        raw.sendall((xs.STREAM_HEADER % srv.domain).encode())
        xs._read_until(raw, xs._FEATURES_END, deadline)
        raw.sendall(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        xs._read_until(raw, re.compile(rb'<proceed[^>]*>'), deadline)
        tls = _ctx(srv.ca_file).wrap_socket(raw, server_hostname=srv.domain)
        tls.sendall((xs.STREAM_HEADER % srv.domain).encode())
        buf = xs._read_until(tls, xs._FEATURES_END, deadline)
        assert 'http://jabber.org/features/iq-register' in xs._features_of(buf)
        tls.sendall(("<iq type='set' id='reg1'><query xmlns='jabber:iq:register'>"
                     "<username>%s</username><password>%s</password></query></iq>"
                     % (user, password)).encode())
        answer = re.compile(rb"<iq[^>]*id=['\"]reg1['\"][^>]*(?:/>|>.*?</iq>)", re.S)
        buf = xs._read_until(tls, answer, deadline, buf)
        return answer.search(buf).group(0).decode()
    finally:
        raw.close()


@pytest.mark.parametrize('cls', KINDS, ids=IDS)
def test_inband_registration_only_when_asked(cls, pki):
    with cls(pki=pki, allow_registration=True) as srv:
        iq = _inband_register(srv, 'newbie', 'n3wbie')
        assert "type='result'" in iq or 'type="result"' in iq, iq
        assert _Client.login(srv, 'newbie', 'n3wbie')[0] == 'ok'
    _record(srv, ' (ibr)')


def test_inband_registration_off_by_default(server):
    feats, _ = xs.probe_features(server.host, server.c2s_port, server.domain, 'starttls',
                                 _ctx(server.ca_file))
    assert 'iq-register' not in feats


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------

def _cli(kind, *args):
    return subprocess.Popen([PYTHON, SCRIPT, 'run', kind] + list(args),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


@pytest.mark.parametrize('kind', IDS)
def test_cli_stdin_eof(kind):
    p = _cli(kind, '--user', 'dave:pa:ss', '--user', 'erin:x')
    try:
        line = p.stdout.readline()
        assert line, p.stderr.read()
        info = json.loads(line)
        for key in ('host', 'c2s_port', 'direct_tls_port', 'domain', 'ca_file', 'state_dir', 'pid', 'users'):
            assert key in info
        assert info['host'] == '127.0.0.1' and info['domain'] == 'localhost'
        assert [u['user'] for u in info['users']] == ['dave', 'erin']
        assert info['users'][0]['password'] == 'pa:ss'
        feats, _ = xs.probe_features(info['host'], info['c2s_port'], info['domain'], 'starttls',
                                     _ctx(info['ca_file']))
        assert EXPECTED_MECHS[kind] <= set(xs.sasl_mechanisms(feats))
        t0 = time.monotonic()
        p.stdin.close()                       # EOF: stop
        assert p.wait(15) == 0, p.stderr.read()
        TIMINGS.append((kind + ' (cli)', info['start_seconds'], time.monotonic() - t0))
        assert not os.path.exists(info['state_dir'])
        assert not os.path.exists('/proc/%d' % info['pid'])
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_cli_sigterm_no_stdin(tmp_path):
    info_file = str(tmp_path / 'info.json')
    state = str(tmp_path / 'state')
    p = subprocess.Popen([PYTHON, SCRIPT, 'run', 'prosody', '--no-stdin', '--info-file', info_file,
                          '--state', state, '--cert', 'wrongname'],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 15
        while not os.path.exists(info_file):
            assert p.poll() is None, p.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        with open(info_file) as f:
            info = json.load(f)
        assert info['state_dir'] == state and info['cert'] == 'wrongname'
        time.sleep(0.3)
        assert p.poll() is None                # /dev/null stdin did not stop it
        p.send_signal(signal.SIGTERM)
        assert p.wait(15) == 0, p.stderr.read()
        assert not os.path.exists('/proc/%d' % info['pid'])
        assert os.path.isdir(state)            # --state is kept
        assert not os.path.exists(info_file)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
