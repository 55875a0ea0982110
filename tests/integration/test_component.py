"""Components (XEP-0114) against real servers: examples/component-echo
connects to Prosody's and ejabberd's component port as comp.<domain>; a
third-party client (slixmpp) probes anyone@comp.<domain> and gets
available presence back, sends it messages and gets each body back from
that JID; a wrong secret is refused with the server's not-authorized."""
import os
import select
import subprocess
import time
import uuid

import pytest

import integ_util as iu
from integ_util import PYTHON, USERS, jid

SECRET = 'comp-%s' % uuid.uuid4().hex[:12]

PEER = r'''
import asyncio, sys
import slixmpp
host, port, ca, me, pw, target = sys.argv[1:7]
bodies = sys.argv[7:]

class Peer(slixmpp.ClientXMPP):
    async def get_dns_records(self, domain, port_=None):
        return [(domain, host, int(port))]

loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)
c = Peer(me, pw)
c.ca_certs = ca
c.default_domain = slixmpp.JID(me).domain
done = loop.create_future()
got = []
seen = {'available': False}

def out(*a):
    print(*a, flush=True)

def esc(s):
    return s.replace('\\', '\\\\').replace('\n', '\\n')

def on_presence(p):
    if p['from'].bare == target and p['type'] in ('available', ''):
        seen['available'] = True
        out('available', p['from'].full)
        for b in bodies:
            c.send_message(mto=target, mbody=b, mtype='chat')

def on_message(m):
    if m['from'].bare == target and m['body']:
        out('received', m['from'].full, esc(m['body']))
        got.append(m['body'])
        if len(got) >= len(bodies) and not done.done():
            done.set_result('done')

def on_start(_):
    c.send_presence()
    c.send_presence(pto=target, ptype='probe')
    out('probed', target)

c.add_event_handler('session_start', on_start)
c.add_event_handler('presence', on_presence)
c.add_event_handler('message', on_message)
c.add_event_handler('failed_auth', lambda *_: done.done() or done.set_result('failed_auth'))
c.connect(address=(host, int(port)))
try:
    status = loop.run_until_complete(asyncio.wait_for(done, 20))
except asyncio.TimeoutError:
    status = 'timeout'
c.disconnect()
try:
    loop.run_until_complete(asyncio.wait_for(c.disconnected, 5))
except Exception:
    pass
out('status', status)
sys.exit(0 if status == 'done' and got == bodies and seen['available'] else 1)
'''


def _fixture(kind):
    @pytest.fixture(scope='module')
    def fixture(pki):
        srv = iu.start_server(kind, pki, component_secret=SECRET)
        try:
            yield srv
        finally:
            srv.stop()
    return fixture


comp_prosody = _fixture('prosody')
comp_ejabberd = _fixture('ejabberd')


@pytest.fixture(params=iu.KINDS)
def comp_server(request):
    return request.getfixturevalue('comp_' + request.param)


@pytest.fixture(scope='session')
def echo_exe():
    return iu._binary('examples', 'component-echo')


def _secret_file(tmp_path, secret):
    p = tmp_path / 'secret'
    p.write_text(secret + '\n')
    p.chmod(0o600)
    return str(p)


def _echo_argv(exe, srv, secret_file):
    return [exe, '--server', srv.host, '--port', str(srv.component_port),
            '--domain', srv.component_domain, '--secret-file', secret_file]


def test_component_echo_answers_slixmpp(comp_server, echo_exe, spawn, tmp_path):
    srv = comp_server
    echo = spawn.popen(_echo_argv(echo_exe, srv, _secret_file(tmp_path, SECRET)),
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines = iu.read_line_starting(echo, 'component-echo: ', timeout=15)
    assert ('component-echo: serving %s' % srv.component_domain) in lines, lines
    target = 'anyone-%s@%s' % (uuid.uuid4().hex[:6], srv.component_domain)
    bodies = ['echo %s' % uuid.uuid4().hex[:8], 'markup <b>&amp;</b> \'"', 'caf\u00e9 \u2615']
    r = subprocess.run([PYTHON, '-c', PEER, srv.host, str(srv.c2s_port), srv.ca_file,
                        jid(srv, 'alice') + '/slix', USERS['alice'], target] + bodies,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=40)
    info = 'peer exit %s\n%s\n%s' % (r.returncode, r.stdout, r.stderr[-3000:])
    assert r.returncode == 0, info
    assert ('available %s' % target) in r.stdout, info
    got = [l.split(' ', 2) for l in r.stdout.splitlines() if l.startswith('received ')]
    assert [g[1] for g in got] == [target] * len(bodies), info
    echo.terminate()
    rc = echo.wait(timeout=10)
    assert rc == 0, (rc, echo.consumed, echo.stdout.read())


def test_component_wrong_secret_is_refused(comp_server, echo_exe, tmp_path):
    srv = comp_server
    r = subprocess.run(_echo_argv(echo_exe, srv, _secret_file(tmp_path, 'not-' + SECRET)),
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    assert r.returncode == 1, r
    lines = r.stderr.splitlines()
    assert lines and lines[-1].startswith('component-echo: '), r.stderr
    assert 'refused the component handshake' in lines[-1], r.stderr
    assert 'not-authorized' in lines[-1], r.stderr


@pytest.fixture(scope='module')
def comp_ejabberd_tls(pki):
    # a name the test certificate holds as such (gnutls refuses '*.localhost')
    srv = iu.start_server('ejabberd', pki, component_secret=SECRET, component_tls=True,
                          component_domain='example.test')
    try:
        yield srv
    finally:
        srv.stop()


def test_component_over_direct_tls(comp_ejabberd_tls, echo_exe, spawn, tmp_path):
    """ejabberd's component port with TLS from the first byte: verified
    against the component's domain with the test CA."""
    srv = comp_ejabberd_tls
    argv = _echo_argv(echo_exe, srv, _secret_file(tmp_path, SECRET)) + [
        '--direct-tls', '--ca-file', srv.ca_file]
    echo = spawn.popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    lines = iu.read_line_starting(echo, 'component-echo: ', timeout=15)
    assert ('component-echo: serving %s' % srv.component_domain) in lines, lines
    target = 'tls-%s@%s' % (uuid.uuid4().hex[:6], srv.component_domain)
    body = 'over tls %s' % uuid.uuid4().hex[:8]
    r = subprocess.run([PYTHON, '-c', PEER, srv.host, str(srv.c2s_port), srv.ca_file,
                        jid(srv, 'alice') + '/slix', USERS['alice'], target, body],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=40)
    assert r.returncode == 0, 'peer exit %s\n%s\n%s' % (r.returncode, r.stdout, r.stderr[-3000:])
    echo.terminate()
    assert echo.wait(timeout=10) == 0



def _wait_for_lines(proc, prefix, count, timeout):
    """Reads proc's stdout (as iu.read_line_starting does, into
    proc.consumed) until `count` lines start with prefix; returns them all."""
    deadline = time.monotonic() + timeout
    fd = proc.stdout.fileno()
    while True:
        lines = getattr(proc, 'consumed', b'').decode('utf-8', 'replace').split('\n')[:-1]
        if sum(l.startswith(prefix) for l in lines) >= count:
            return lines
        left = deadline - time.monotonic()
        r, _, _ = select.select([fd], [], [], max(0.0, left))
        chunk = os.read(fd, 65536) if r else b''
        if not chunk:
            raise AssertionError('fewer than %d lines %r within %ss: %r' % (count, prefix, timeout,
                                                                           lines))
        proc.consumed = getattr(proc, 'consumed', b'') + chunk


def test_component_reconnects_after_a_cut(comp_server, echo_exe, spawn, tmp_path):
    """The link to the component port is reset: component-echo connects
    again, does the handshake again (its secret kept for that), and
    answers as before."""
    from faultproxy import FaultProxy
    srv = comp_server
    proxy = FaultProxy(srv.host, srv.component_port, seed=7)
    try:
        argv = [echo_exe, '--server', '127.0.0.1', '--port', str(proxy.port),
                '--domain', srv.component_domain,
                '--secret-file', _secret_file(tmp_path, SECRET)]
        echo = spawn.popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        iu.read_line_starting(echo, 'component-echo: serving', timeout=15)
        assert proxy.cut_all() == 1
        lines = _wait_for_lines(echo, 'component-echo: serving', 2, timeout=30)
        assert any('reconnecting' in l for l in lines), lines
        target = 'again-%s@%s' % (uuid.uuid4().hex[:6], srv.component_domain)
        r = subprocess.run([PYTHON, '-c', PEER, srv.host, str(srv.c2s_port), srv.ca_file,
                            jid(srv, 'alice') + '/slix', USERS['alice'], target, 'after the cut'],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=40)
        assert r.returncode == 0, 'peer exit %s\n%s\n%s' % (r.returncode, r.stdout, r.stderr[-3000:])
        echo.terminate()
        assert echo.wait(timeout=10) == 0
    finally:
        proxy.close()


@pytest.mark.parametrize('kind', ['socks5', 'http'])
def test_component_echo_through_a_proxy(comp_ejabberd_tls, echo_exe, spawn, tmp_path, kind):
    """component-echo --proxy: the component port reached through a SOCKS5
    or HTTP CONNECT proxy, TLS from the first byte end to end (verified
    against the component's domain); the proxy is asked for --server and
    --port by name, and the echo answers as without it."""
    from proxies import HttpConnectProxy, Socks5Proxy
    srv = comp_ejabberd_tls
    p = (Socks5Proxy if kind == 'socks5' else HttpConnectProxy)(
        {('xmpp.invalid', srv.component_port): ('127.0.0.1', srv.component_port)})
    try:
        argv = [echo_exe, '--server', 'xmpp.invalid', '--port', str(srv.component_port),
                '--domain', srv.component_domain,
                '--secret-file', _secret_file(tmp_path, SECRET),
                '--direct-tls', '--ca-file', srv.ca_file, '--proxy', p.url()]
        echo = spawn.popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        lines = iu.read_line_starting(echo, 'component-echo: ', timeout=15)
        assert ('component-echo: serving %s' % srv.component_domain) in lines, lines
        assert p.requests == [('xmpp.invalid', srv.component_port)], p.requests
        target = 'proxied-%s@%s' % (uuid.uuid4().hex[:6], srv.component_domain)
        r = subprocess.run([PYTHON, '-c', PEER, srv.host, str(srv.c2s_port), srv.ca_file,
                            jid(srv, 'alice') + '/slix', USERS['alice'], target, 'via ' + kind],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=40)
        assert r.returncode == 0, 'peer exit %s\n%s\n%s' % (r.returncode, r.stdout,
                                                            r.stderr[-3000:])
        echo.terminate()
        assert echo.wait(timeout=10) == 0
    finally:
        p.close()


def test_component_echo_in_clear_through_a_proxy_is_refused(comp_prosody, echo_exe, tmp_path):
    """A cleartext component stream through a proxy is refused under the
    default TLS mode (where the proxy connects cannot be seen): exit 1 with
    a line that says so, and the proxy is never asked."""
    from proxies import Socks5Proxy
    srv = comp_prosody
    p = Socks5Proxy()
    try:
        r = subprocess.run(_echo_argv(echo_exe, srv, _secret_file(tmp_path, SECRET)) +
                           ['--proxy', p.url()],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
        assert r.returncode == 1, r
        lines = r.stderr.splitlines()
        assert lines and lines[-1].startswith('component-echo: '), r.stderr
        assert p.requests == [], p.requests
    finally:
        p.close()
