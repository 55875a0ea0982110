"""HTTP File Upload (XEP-0363) through real servers: Prosody 0.12's
mod_http_file_share (a Component served on an HTTPS port) and ejabberd
23.01's mod_http_upload (on a TLS HTTP listener), both with the test CA's
certificate on a free loopback port. tests/integration/upload_probe
discovers the service, gets a slot and PUTs the bytes through libcurl on
epode's loop; the test GETs the URL trusting the test CA and compares
the bytes; a slixmpp peer receives the URL as an OOB message. Refusals:
a file over the limit announced by disco (refused before any slot), the
same file with the limit unknown (the service's file-too-large, with its
limit), and a CA that does not sign the HTTPS certificate (ECERT)."""

import os
import ssl
import subprocess
import urllib.request
import uuid

import pytest

import integ_util as iu
from integ_util import PYTHON, USERS, jid

HERE = os.path.dirname(os.path.abspath(__file__))
LIMIT = 300000
QUOTA = 500000  # Prosody: bytes a day per account


def _prosody(pki, https_cert='good'):
    port = iu.xs.free_port()
    cert, key = pki.server_pair(https_cert)
    # http_host (localhost, set by the harness for every host) makes the
    # component's URLs https://localhost:PORT/file_share/..., a name the
    # certificate has and /etc/hosts resolves.
    extra = '\n'.join([
        'Component "upload.localhost" "http_file_share"',
        '\thttp_file_share_size_limit = %d' % LIMIT,
        '\thttp_file_share_daily_quota = %d' % QUOTA,
    ])
    srv = iu.start_server('prosody', pki, config={
        'https_ports': [port], 'https_interfaces': [iu.xs.HOST],
        'https_ssl': {'certificate': cert, 'key': key},
    }, extra_config=extra)
    srv.upload_port = port
    return srv


def _ejabberd(pki):
    port = iu.xs.free_port()

    class Ejabberd(iu.xs.Ejabberd):
        extra_listeners = ({'port': port, 'ip': iu.xs.HOST, 'module': 'ejabberd_http',
                            'tls': True, 'request_handlers': {'/upload': 'mod_http_upload'}},)

    srv = Ejabberd(pki=pki, graceful_stop=False, users=dict(USERS), config={'modules': {
        'mod_http_upload': {
            'put_url': 'https://localhost:%d/upload' % port,
            'get_url': 'https://localhost:%d/upload' % port,
            'docroot': '@HOME@/upload', 'max_size': LIMIT, 'thumbnail': False,
            'host': 'upload.@HOST@'},
    }})
    srv.start()
    srv.upload_port = port
    return srv


@pytest.fixture(scope='module')
def prosody(pki):
    srv = _prosody(pki)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope='module')
def ejabberd(pki):
    srv = _ejabberd(pki)
    try:
        yield srv
    finally:
        srv.stop()


def probe(srv, *extra, ca=None, timeout=40, user='alice', password=None):
    exe = iu._binary('tests', 'integration', 'upload_probe')
    argv = [exe, '--server', srv.host, '--port', str(srv.c2s_port),
            '--ca-file', ca or srv.ca_file, '--jid', jid(srv, user),
            '--password', password or USERS[user]] + list(extra)
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout)
    lines = p.stdout.splitlines()
    return p.returncode, lines, p.stdout + p.stderr


def line(lines, word):
    for l in lines:
        if l.startswith(word + ' '):
            return l[len(word) + 1:]
    return None


def last(lines, word):
    found = [l[len(word) + 1:] for l in lines if l.startswith(word + ' ')]
    return found[-1] if found else None


def generated(n):
    return bytes((i * 7 + 3) & 0xff for i in range(n))


def fetch(srv, url):
    ctx = ssl.create_default_context(cafile=srv.ca_file)
    with urllib.request.urlopen(url, context=ctx, timeout=20) as r:
        return r.read()


@pytest.mark.parametrize('size', [1, 100000])
@pytest.mark.parametrize('kind', ['prosody', 'ejabberd'])
def test_upload_then_get_gives_the_same_bytes(request, kind, size):
    srv = request.getfixturevalue(kind)
    rc, lines, out = probe(srv, '--size', str(size), '--filename', 'hello file.bin',
                           '--content-type', 'application/octet-stream')
    assert rc == 0, out
    url = line(lines, 'url')
    assert url.startswith('https://localhost:%d/' % srv.upload_port), out
    assert last(lines, 'progress') == '%d %d' % (size, size), out
    assert fetch(srv, url) == generated(size)


@pytest.mark.parametrize('kind', ['prosody', 'ejabberd'])
def test_upload_of_a_file_on_an_external_loop(request, kind, tmp_path):
    srv = request.getfixturevalue(kind)
    path = tmp_path / 'notes.txt'
    data = b''.join(b'line %d of the notes\n' % i for i in range(5000))
    path.write_bytes(data)
    rc, lines, out = probe(srv, '--file', str(path), '--content-type', 'text/plain',
                           '--external-loop')
    assert rc == 0, out
    url = line(lines, 'url')
    assert url.endswith('/notes.txt'), out
    assert fetch(srv, url) == data


@pytest.mark.parametrize('kind', ['prosody', 'ejabberd'])
def test_upload_over_the_disco_limit_is_refused_before_a_slot(request, kind):
    srv = request.getfixturevalue(kind)
    rc, lines, out = probe(srv, '--size', str(LIMIT + 1))
    assert rc == 1, out
    err = line(lines, 'error')
    assert err.startswith('LIMIT '), out
    assert 'max=%d' % LIMIT in err, out


@pytest.mark.parametrize('kind', ['prosody', 'ejabberd'])
def test_upload_too_large_for_the_service_names_its_limit(request, kind):
    srv = request.getfixturevalue(kind)
    rc, lines, out = probe(srv, '--size', str(LIMIT + 1), '--service', 'upload.localhost')
    assert rc == 1, out
    err = line(lines, 'error')
    assert err.startswith('LIMIT condition=not-acceptable max=%d ' % LIMIT), out


def test_upload_over_the_daily_quota_is_refused_with_resource_constraint(prosody):
    user, pw = 'quota-%s' % uuid.uuid4().hex[:8], 'pw-quota'
    prosody.register(user, pw)
    rc, lines, out = probe(prosody, '--size', str(QUOTA // 2 + 10000), user=user, password=pw)
    assert rc == 0, out
    rc, lines, out = probe(prosody, '--size', str(QUOTA // 2 + 10000), user=user, password=pw)
    assert rc == 1, out
    err = line(lines, 'error')
    assert err.startswith('REFUSED condition=resource-constraint '), out
    assert 'Daily quota' in err, out


@pytest.fixture(scope='module')
def prosody_wrong_https_cert(pki):
    """A Prosody whose XMPP certificate is good but whose HTTPS one is
    signed by the unrelated CA."""
    srv = _prosody(pki, https_cert='untrusted')
    try:
        yield srv
    finally:
        srv.stop()


def test_upload_refuses_an_https_certificate_the_ca_does_not_sign(prosody_wrong_https_cert):
    srv = prosody_wrong_https_cert
    rc, lines, out = probe(srv, '--size', '10')
    assert line(lines, 'ready'), out   # the XMPP side was fine
    assert rc == 1, out
    assert line(lines, 'error').startswith('CERT '), out


@pytest.mark.parametrize('kind', ['prosody', 'ejabberd'])
def test_upload_url_reaches_a_slixmpp_peer_as_oob(request, kind):
    srv = request.getfixturevalue(kind)
    peer = subprocess.Popen(
        [PYTHON, os.path.join(HERE, 'oob_peer.py'), '--host', srv.host,
         '--port', str(srv.c2s_port), '--ca-file', srv.ca_file, '--jid', jid(srv, 'bob'),
         '--password', USERS['bob'], '--timeout', '30'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert peer.stdout.readline().startswith('ready '), peer.stderr.read()
        rc, lines, out = probe(srv, '--size', '4096', '--filename', 'pic.png',
                               '--content-type', 'image/png', '--send-to', jid(srv, 'bob'))
        assert rc == 0, out
        url = line(lines, 'url')
        got, err = peer.communicate(timeout=40)
        assert peer.returncode == 0, got + err
        assert 'oob %s body %s' % (url, url) in got, got
        assert fetch(srv, url) == generated(4096)
    finally:
        if peer.poll() is None:
            peer.kill()
            peer.wait()


LUA = '/usr/bin/lua5.4'


def _sanitized_build():
    import json
    try:
        with open(os.path.join(iu.BUILD, 'meson-info', 'intro-buildoptions.json')) as f:
            opts = json.load(f)
    except (OSError, ValueError):
        return False
    return any(o.get('name') == 'b_sanitize' and o.get('value') not in ('none', '', [])
               for o in opts)


@pytest.mark.skipif(not os.access(LUA, os.X_OK), reason='lua5.4 is not installed')
def test_lua_binding_uploads_and_sends_the_url(prosody):
    """Lua's c:upload (the gcc flavour: an ASan module would need its
    runtime preloaded into lua5.4, as for test_register's Lua part)."""
    module_dir = os.path.join(iu.BUILD, 'bindings', 'lua')
    if not os.path.exists(os.path.join(module_dir, 'epode.so')):
        pytest.skip('the Lua module was not built')
    if _sanitized_build():
        pytest.skip('the sanitized Lua module needs its runtime preloaded')
    env = dict(os.environ, LUA_CPATH=os.path.join(module_dir, '?.so') + ';;')
    r = subprocess.run([LUA, os.path.join(HERE, 'upload_check.lua'), prosody.host,
                        str(prosody.c2s_port), prosody.ca_file, jid(prosody, 'alice'),
                        USERS['alice'], str(LIMIT)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60,
                       env=env)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    url = line(r.stdout.splitlines(), 'url')
    assert fetch(prosody, url) == generated(50000)
