"""Helpers for epode's integration tests against real Prosody and
ejabberd (tests/servers/xmppservers.py starts them on 127.0.0.1).

The C helpers (login_probe, exchange) and the examples (echo-bot,
epode-send) come from a meson build directory: $EPODE_BUILD, default
./build (relative to the current directory, else to the source tree).

Servers are started by the fixtures in conftest.py with the accounts in
USERS.
"""

import os
import re
import select
import socket
import ssl
import subprocess
import sys
import threading
import time
import types

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'servers'))
import xmppservers as xs  # noqa: E402

PYTHON = '/usr/bin/python3'
KINDS = ('prosody', 'ejabberd')

# charlie's password exercises SASLprep and SCRAM's attribute syntax: a
# space, ',' and '=' (attribute separators), non-ASCII letters.
USERS = {
    'alice': 'alice-secret',
    'bob': 'bob-secret',
    'charlie': 'ch@rlie p\u00e4ssw\u00f6rd,=x',
}

# (test id, server kind, security line) of every successful login, printed
# at the end of the run: which mechanism was really negotiated where.
NEGOTIATED = []


def _build_dir():
    b = os.environ.get('EPODE_BUILD', 'build')
    if os.path.isabs(b):
        return b
    for base in (os.getcwd(), ROOT):
        cand = os.path.join(base, b)
        if os.path.isdir(cand):
            return os.path.abspath(cand)
    return os.path.abspath(b)


BUILD = _build_dir()


def _binary(*parts):
    path = os.path.join(BUILD, *parts)
    if not os.access(path, os.X_OK):
        pytest.fail('%s is missing: build first (meson setup build && ninja -C build), '
                    'or set EPODE_BUILD to the build directory' % path, pytrace=False)
    return path


def start_server(kind, pki, **kw):
    cls = xs.SERVERS[kind]
    kw.setdefault('users', dict(USERS))
    srv = cls(pki=pki, graceful_stop=False, **kw)
    srv.start()
    return srv


# ---------------------------------------------------------------------------
# running login_probe
# ---------------------------------------------------------------------------

_DISC = re.compile(r'^disconnected reason=(\S+) error=(\S+) condition=(\S+) text=(.*)$')


class ProbeResult:
    """What login_probe printed, parsed."""

    def __init__(self, argv, proc, seconds):
        self.argv = argv
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.seconds = seconds
        self.lines = proc.stdout.splitlines()
        self.events = [l.split(' ', 1)[1] for l in self.lines if l.startswith('event ')]
        self.ready = None
        self.security = None
        self.cert_callbacks = []
        self.messages = []
        self.disconnected = None
        for l in self.lines:
            if l.startswith('ready '):
                self.ready = l[6:]
            elif l.startswith('security '):
                self.security = l[9:]
            elif l.startswith('cert-callback '):
                self.cert_callbacks.append(l[14:])
            elif l.startswith('message '):
                frm, _, body = l[8:].partition(' ')
                self.messages.append((frm, body))
            elif l.startswith('disconnected '):
                m = _DISC.match(l)
                assert m, 'unparsable line: %r' % l
                self.disconnected = {'reason': m.group(1), 'error': m.group(2),
                                     'condition': m.group(3), 'text': m.group(4)}

    @property
    def mechanism(self):
        m = re.search(r'SASL (\S+)', self.security or '')
        return m.group(1) if m else None

    def __repr__(self):
        return 'login_probe %s\n-> exit %s in %.2fs\nstdout:\n%s\nstderr:\n%s' % (
            ' '.join(self.argv[1:]), self.rc, self.seconds, self.stdout, self.stderr[-3000:])


def probe(bins, srv, *args, user='alice', password=None, port=None, direct_tls=False,
          timeout=15, ca_file='default', record=None, jid=None, popen=None, no_server=False):
    """Runs login_probe against srv as `user` (password from USERS unless
    given; `jid` overrides the JID) and returns a ProbeResult. `ca_file`
    None leaves the trust store at epode's default (the system's). With
    `popen`, returns popen(argv) instead of waiting (a background run).
    `no_server` leaves out --server/--port, so epode looks up SRV records."""
    argv = [bins['probe']]
    if not no_server:  # no_server: find it through DNS SRV (pass --dns)
        if port is None:
            port = srv.direct_tls_port if direct_tls else srv.c2s_port
        argv += ['--server', srv.host, '--port', str(port)]
    if direct_tls:
        argv.append('--direct-tls')
    if ca_file == 'default':
        ca_file = srv.ca_file
    if ca_file:
        argv += ['--ca-file', ca_file]
    argv += ['--jid', jid or '%s@%s' % (user, srv.domain),
             '--password', USERS.get(user, '') if password is None else password,
             '--timeout', str(timeout)]
    argv += [str(a) for a in args]
    if popen is not None:       # run in the background: popen(argv) starts it
        return popen(argv)
    t0 = time.monotonic()
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout + 15)
    res = ProbeResult(argv, proc, time.monotonic() - t0)
    if res.security and res.ready and record is not None:
        NEGOTIATED.append((record, getattr(srv, 'kind', '?'), res.security))
    return res


def assert_logged_in(res, srv, user='alice'):
    """READY as user@domain/resource, the full event sequence, a clean close."""
    assert res.rc == 0, res
    assert res.events == ['CONNECTING', 'TLS_UP', 'AUTHENTICATED'], res
    assert res.ready and res.ready.startswith('%s@%s/' % (user, srv.domain)), res
    assert len(res.ready) > len('%s@%s/' % (user, srv.domain)), res
    assert res.disconnected and res.disconnected['reason'] == 'CLOSED', res
    # order: events, then ready and security, then the close
    idx = {l.split(' ')[0]: i for i, l in enumerate(res.lines)}
    assert idx['ready'] < idx['security'] < idx['disconnected'], res


# ---------------------------------------------------------------------------
# subprocesses we start (echo-bot, slixmpp peer): always reaped
# ---------------------------------------------------------------------------

def start_http_server(kind, pki, module, secure_option, handler, cert='good'):
    """A Prosody or ejabberd with an HTTP transport module (websocket,
    bosh) on its HTTP port and on an HTTPS port of its own
    (srv.https_port): Prosody's `https_ports` with `secure_option`
    (consider_websocket_secure, consider_bosh_secure: SASL over the
    loopback http:// too), ejabberd's extra TLS listener with `handler`
    (path, request handler)."""
    https = xs.free_port()
    kw = dict(users=dict(USERS), modules=[module], graceful_stop=False, cert=cert)
    if kind == 'prosody':
        kw['config'] = {secure_option: True, 'https_ports': [https]}
    srv = xs.SERVERS[kind](pki=pki, **kw)
    if kind == 'ejabberd':
        srv.extra_listeners = [{'port': https, 'ip': xs.HOST, 'module': 'ejabberd_http',
                                'tls': True, 'request_handlers': dict([handler])}]
    srv.start()
    srv.https_port = https
    return srv


class BackgroundProbe:
    """login_probe running in the background, its output read as it comes,
    so that a test can start a peer once the probe printed "ready" (which
    it prints after sending its presence) instead of racing the two."""

    def __init__(self, argv, proc):
        self.argv, self.proc = argv, proc
        self.lines = []
        self._ready = threading.Event()
        self._t0 = time.monotonic()
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.append(line)
            if line.startswith(('ready ', 'disconnected ')):
                self._ready.set()
        self._ready.set()

    def wait_ready(self, timeout=45):
        """True once the probe is READY (its presence sent); False if it
        ended or printed nothing in time."""
        self._ready.wait(timeout)
        return any(l.startswith('ready ') for l in self.lines)

    def finish(self, timeout=60):
        """Waits for the probe's end and returns its ProbeResult."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._reader.join(10)
        done = types.SimpleNamespace(returncode=self.proc.returncode,
                                     stdout=''.join(self.lines), stderr=self.proc.stderr.read())
        return ProbeResult(self.argv, done, time.monotonic() - self._t0)


def probe_background(bins, srv, *args, spawn, **kw):
    """probe() started in the background (see BackgroundProbe)."""
    holder = {}

    def popen(argv):
        holder['argv'] = argv
        return spawn.popen(argv)
    proc = probe(bins, srv, *args, popen=popen, **kw)
    return BackgroundProbe(holder['argv'], proc)


class Spawned:
    def __init__(self):
        self.procs = []

    def popen(self, argv, **kw):
        kw.setdefault('stdin', subprocess.DEVNULL)
        kw.setdefault('stdout', subprocess.PIPE)
        kw.setdefault('stderr', subprocess.PIPE)
        kw.setdefault('text', True)
        p = subprocess.Popen(argv, **kw)
        self.procs.append(p)
        return p

    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    pass
            for f in (p.stdout, p.stderr):
                if f:
                    f.close()


def finish_probe(proc, timeout=30):
    """Waits for a background login_probe (started with probe(popen=...))
    and returns its ProbeResult (with what read_line_starting consumed)."""
    out, err = proc.communicate(timeout=timeout)
    out = getattr(proc, 'consumed', b'').decode('utf-8', 'replace') + out
    return ProbeResult(proc.args, types.SimpleNamespace(returncode=proc.returncode, stdout=out,
                                                        stderr=err), 0.0)


def read_line_starting(proc, prefix, timeout=15):
    """Reads a background process's stdout (raw, so nothing hides in a
    Python buffer) until a line starts with prefix; returns the lines read
    so far. What was read stays in proc.consumed for finish_probe()."""
    if not hasattr(proc, 'consumed'):
        proc.consumed = b''
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    while True:
        lines = proc.consumed.decode('utf-8', 'replace').split('\n')
        if any(l.startswith(prefix) for l in lines[:-1]):
            return lines[:-1]
        left = deadline - time.monotonic()
        r, _, _ = select.select([fd], [], [], max(0.0, left))
        if not r:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        proc.consumed += chunk
    raise AssertionError('no line starting with %r within %ss; got %r' % (prefix, timeout, proc.consumed))


def conn_args(srv, direct=False):
    """--server/--port/--ca-file (and --direct-tls) options for srv, as the
    examples and exchange take them."""
    args = ['--server', srv.host, '--port', str(srv.direct_tls_port if direct else srv.c2s_port),
            '--ca-file', srv.ca_file]
    if direct:
        args.append('--direct-tls')
    return args


def jid(srv, user):
    """user@domain of srv."""
    return '%s@%s' % (user, srv.domain)


def write_password_file(tmp_path, user, password=None):
    path = tmp_path / ('%s.pw' % user)
    path.write_text((USERS[user] if password is None else password) + '\n', encoding='utf-8')
    return str(path)


# ---------------------------------------------------------------------------
# a tiny fake XMPP server
# ---------------------------------------------------------------------------

class FakeServer:
    """Listens on 127.0.0.1 (random port) and serves up to `accepts`
    connections, one after the other: waits for the client's stream
    header, answers with `reply` (a stream header and features, or a
    stream error; b'' sends nothing), then records everything the client
    sends until it closes (or `linger` seconds pass). `connections` holds
    the bytes received on each connection, `received` those of the first;
    `closed_by_client` says, per connection, whether the client closed.
    With `tls` (a server-side ssl.SSLContext) it speaks direct TLS: what
    it receives and sends is inside TLS; `handshakes` counts the TLS
    handshakes that succeeded."""

    def __init__(self, reply, linger=5.0, accepts=1, tls=None):
        self.reply = reply.encode() if isinstance(reply, str) else reply
        self.tls = tls
        self.handshakes = 0
        self.linger = linger
        self.accepts = accepts
        self.connections = []
        self.closed_by_client = []
        self.error = None
        self.stopping = False
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @property
    def received(self):
        return self.connections[0] if self.connections else b''

    @property
    def client_closed(self):
        return bool(self.closed_by_client) and self.closed_by_client[0]

    def _serve(self, conn):
        idx = len(self.connections)
        self.connections.append(b'')
        self.closed_by_client.append(False)
        deadline = time.monotonic() + self.linger
        sent = False
        if self.tls:
            conn.settimeout(self.linger)
            try:
                conn = self.tls.wrap_socket(conn, server_side=True)
            except (OSError, ssl.SSLError):
                return  # the client refused us (or went away)
            self.handshakes += 1
        while time.monotonic() < deadline:
            conn.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = conn.recv(65536)
            except socket.timeout:
                break
            except (ConnectionResetError, ssl.SSLError):
                self.closed_by_client[idx] = True
                break
            if not chunk:
                self.closed_by_client[idx] = True
                break
            self.connections[idx] += chunk
            if not sent and re.search(rb'<(?:\w+:)?stream[^>]*>', self.connections[idx]):
                if self.reply:
                    conn.sendall(self.reply)
                sent = True
        if self.tls:
            conn.close()  # the TLS socket took the accepted one over

    def _run(self):
        try:
            self.sock.settimeout(0.05)
            deadline = time.monotonic() + 15
            while len(self.connections) < self.accepts and not self.stopping:
                if time.monotonic() > deadline:
                    break
                try:
                    conn, _ = self.sock.accept()
                except socket.timeout:
                    continue
                with conn:
                    self._serve(conn)
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e
        finally:
            self.sock.close()

    def join(self):
        self.thread.join(20)
        return not self.thread.is_alive()

    def close(self):
        """Stops accepting (the thread ends within ~50 ms)."""
        self.stopping = True
        self.join()
        try:
            self.sock.close()
        except OSError:
            pass


def closed_port():
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]
