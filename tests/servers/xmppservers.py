#!/usr/bin/python3
"""Run real XMPP servers (Debian's Prosody 0.12 and ejabberd 23.01) on
loopback for epode's integration tests, interop tests, benchmarks and demos.

Python API (stdlib only):

    with Prosody(users={'alice': 'secret'}) as srv:
        srv.host, srv.c2s_port, srv.direct_tls_port, srv.domain, srv.ca_file
        srv.register('bob', 'pw')

    with Ejabberd(cert='untrusted', tls_max_version='1.2') as srv: ...

CLI (for C test programs and shell scripts):

    /usr/bin/python3 tests/servers/xmppservers.py run prosody|ejabberd \
        [--state DIR] [--user NAME:PASSWORD ...] [--cert good|untrusted|wrongname]

prints one line of JSON once the server is ready, then serves until stdin
reaches EOF (or SIGTERM/SIGINT/SIGHUP), stops the server and exits 0.

Everything binds to 127.0.0.1 only; all state lives in one directory.
"""

import argparse
import atexit
import ctypes
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

HOST = '127.0.0.1'
PROSODY_BIN = '/usr/bin/prosody'
PROSODYCTL_BIN = '/usr/bin/prosodyctl'
ERL_BIN = '/usr/bin/erl'
EJABBERD_ERL_LIBS = '/usr/lib/x86_64-linux-gnu'   # as /usr/sbin/ejabberdctl sets it
OPENSSL_BIN = 'openssl'
SAFE_PATH = '/usr/sbin:/usr/bin:/sbin:/bin'

CERT_KINDS = ('good', 'untrusted', 'wrongname')
SERVER_NAMES = ('localhost', '*.localhost', 'example.test')
XMPPADDR_OID = '1.3.6.1.5.5.7.8.5'


class ServerError(RuntimeError):
    """A server did not start, did not stop, or refused an operation."""


# ---------------------------------------------------------------------------
# PKI
# ---------------------------------------------------------------------------

class PKI:
    """Paths of the test certificates (all PEM, EC P-256 keys, PKCS#8).

    ca_cert/ca_key                 the trusted test CA (give ca_cert to clients)
    server_cert/server_key         'good': SAN localhost, *.localhost,
                                   example.test, IP 127.0.0.1; signed by the CA
    untrusted_ca_cert/_key         an unrelated CA
    untrusted_cert/untrusted_key   right names, signed by the unrelated CA
    wrongname_cert/wrongname_key   SAN wrong.invalid only, signed by the good CA
    client_cert/client_key         alice@localhost (CN and XmppAddr otherName),
                                   clientAuth, signed by the good CA
    """

    def __init__(self, directory):
        self.dir = os.path.abspath(directory)
        p = lambda name: os.path.join(self.dir, name)  # noqa: E731
        self.ca_cert, self.ca_key = p('ca.crt'), p('ca.key')
        self.server_cert, self.server_key = p('server.crt'), p('server.key')
        self.untrusted_ca_cert, self.untrusted_ca_key = p('untrusted-ca.crt'), p('untrusted-ca.key')
        self.untrusted_cert, self.untrusted_key = p('untrusted.crt'), p('untrusted.key')
        self.wrongname_cert, self.wrongname_key = p('wrongname.crt'), p('wrongname.key')
        self.client_cert, self.client_key = p('client-alice.crt'), p('client-alice.key')
        self.client_jid = 'alice@localhost'

    def server_pair(self, kind='good'):
        """(cert, key) for a server certificate of the given kind."""
        if kind == 'good':
            return self.server_cert, self.server_key
        if kind == 'untrusted':
            return self.untrusted_cert, self.untrusted_key
        if kind == 'wrongname':
            return self.wrongname_cert, self.wrongname_key
        raise ValueError('cert must be one of %s, not %r' % (CERT_KINDS, kind))

    def server_pem(self, kind='good'):
        """One PEM file with the server certificate and its key (the form
        ejabberd's certfiles wants; no CA in it, so both servers send the
        same one-certificate chain); made on first use."""
        cert, key = self.server_pair(kind)
        out = os.path.join(self.dir, '%s-with-key.pem' % os.path.basename(cert)[:-4])
        if not os.path.exists(out):
            _write_atomic(out, _read(cert) + _read(key), 0o600)
        return out

    def files(self):
        return [v for k, v in sorted(vars(self).items())
                if k.endswith(('_cert', '_key'))]

    def complete(self):
        return all(os.path.exists(f) for f in self.files())

    def as_dict(self):
        d = {k: v for k, v in vars(self).items() if k.endswith(('_cert', '_key'))}
        d['dir'] = self.dir
        d['client_jid'] = self.client_jid
        return d


def _read(path):
    with open(path, 'rb') as f:
        return f.read()


def _write_atomic(path, data, mode=0o644):
    if isinstance(data, str):
        data = data.encode()
    tmp = '%s.tmp%d' % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _openssl_cert(pki_dir, name, subject_cn, exts, ca=None):
    """Make key `name`.key and certificate `name`.crt; self-signed if ca is
    None, else signed by ca=(cert, key)."""
    cnf = os.path.join(pki_dir, name + '.cnf')
    lines = ['[req]', 'distinguished_name = dn', 'prompt = no',
             'x509_extensions = ext', '[dn]', 'CN = ' + subject_cn, '[ext]']
    lines += ['%s = %s' % kv for kv in exts]
    with open(cnf, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    key = os.path.join(pki_dir, name + '.key')
    crt = os.path.join(pki_dir, name + '.crt')
    cmd = [OPENSSL_BIN, 'req', '-x509', '-new', '-newkey', 'ec',
           '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
           '-keyout', key, '-out', crt, '-days', '3650', '-config', cnf]
    if ca:
        cmd += ['-CA', ca[0], '-CAkey', ca[1]]
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, env=_clean_env())
    if r.returncode != 0:
        raise ServerError('openssl failed for %s: %s' % (name, r.stdout.decode(errors='replace')))
    os.chmod(key, 0o600)
    return crt, key


def make_pki(directory):
    """Create (or reuse, if complete) the test PKI in `directory`; see PKI."""
    os.makedirs(directory, exist_ok=True)
    pki = PKI(directory)
    if pki.complete():
        return pki
    d = pki.dir
    ca_ext = [('basicConstraints', 'critical,CA:TRUE'),
              ('keyUsage', 'critical,keyCertSign,cRLSign'),
              ('subjectKeyIdentifier', 'hash')]
    leaf = [('basicConstraints', 'critical,CA:FALSE'),
            ('keyUsage', 'critical,digitalSignature'),
            ('subjectKeyIdentifier', 'hash'),
            ('authorityKeyIdentifier', 'keyid')]
    good_san = ', '.join(['DNS:' + n for n in SERVER_NAMES] + ['IP:127.0.0.1'])
    ca = _openssl_cert(d, 'ca', 'epode test CA', ca_ext)
    uca = _openssl_cert(d, 'untrusted-ca', 'epode untrusted test CA', ca_ext)
    server_ext = leaf + [('extendedKeyUsage', 'serverAuth, clientAuth'),
                         ('subjectAltName', good_san)]
    _openssl_cert(d, 'server', 'localhost', server_ext, ca)
    _openssl_cert(d, 'untrusted', 'localhost', server_ext, uca)
    _openssl_cert(d, 'wrongname', 'wrong.invalid',
                  leaf + [('extendedKeyUsage', 'serverAuth, clientAuth'),
                          ('subjectAltName', 'DNS:wrong.invalid')], ca)
    _openssl_cert(d, 'client-alice', pki.client_jid,
                  leaf + [('extendedKeyUsage', 'clientAuth'),
                          ('subjectAltName', 'otherName:%s;UTF8:%s' % (XMPPADDR_OID, pki.client_jid))],
                  ca)
    return pki


# ---------------------------------------------------------------------------
# small helpers: ports, environment, /proc
# ---------------------------------------------------------------------------

def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _free_ports(n):
    ports = set()
    while len(ports) < n:
        ports.add(free_port())
    return sorted(ports, key=lambda _: os.urandom(1))


def _clean_env(**extra):
    """A minimal environment: no proxies, no inherited Lua/Erlang settings."""
    env = {'PATH': SAFE_PATH, 'LANG': 'C.UTF-8', 'LC_ALL': 'C.UTF-8'}
    for k in ('TMPDIR',):
        if k in os.environ:
            env[k] = os.environ[k]
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _proc_table():
    """{pid: (ppid, starttime)} for every process visible in /proc."""
    table = {}
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % name, 'rb') as f:
                stat = f.read().decode(errors='replace')
        except OSError:
            continue
        rest = stat[stat.rfind(')') + 2:].split()
        # rest[0] is the state, rest[1] ppid, starttime is field 22 -> rest[19]
        try:
            table[int(name)] = (int(rest[1]), int(rest[19]), rest[0])
        except (IndexError, ValueError):
            continue
    return table


def _descendants(root, table=None):
    """{pid: starttime} of root and all its descendants (by ppid chains)."""
    table = table if table is not None else _proc_table()
    children = {}
    for pid, (ppid, _st, _state) in table.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in table and pid not in out:
            out[pid] = table[pid][1]
            todo.extend(children.get(pid, ()))
    return out


def _alive(pid, starttime):
    """True if pid still names the same process and it is not a zombie."""
    try:
        with open('/proc/%d/stat' % pid, 'rb') as f:
            stat = f.read().decode(errors='replace')
    except OSError:
        return False
    rest = stat[stat.rfind(')') + 2:].split()
    return int(rest[19]) == starttime and rest[0] not in ('Z', 'X')


def _comm(pid):
    try:
        with open('/proc/%d/comm' % pid) as f:
            return f.read().strip()
    except OSError:
        return '?'


def _listening_inodes(port):
    inodes = set()
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[3] != '0A':        # TCP_LISTEN
                        continue
                    if int(parts[1].rsplit(':', 1)[1], 16) == port:
                        inodes.add(parts[9])
        except OSError:
            pass
    return inodes


def _socket_inodes_of(pids):
    held = set()
    for pid in pids:
        fddir = '/proc/%d/fd' % pid
        try:
            names = os.listdir(fddir)
        except OSError:
            continue
        for fd in names:
            try:
                link = os.readlink(os.path.join(fddir, fd))
            except OSError:
                continue
            if link.startswith('socket:['):
                held.add(link[8:-1])
    return held


def _epmd_pids():
    return {pid: st for pid, (_pp, st, _s) in _proc_table().items() if _comm(pid) == 'epmd'}


def _environ_has(pid, needle):
    try:
        with open('/proc/%d/environ' % pid, 'rb') as f:
            return needle.encode() in f.read()
    except OSError:
        return False


_PR_SET_PDEATHSIG = 1
try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:      # pragma: no cover
    _libc = None


def _child_setup(parent_pid):
    """preexec_fn: die with the thread that started us (SIGKILL), so a harness
    killed with SIGKILL does not leave a server behind."""
    def fn():
        if _libc is not None:
            _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:
            os._exit(1)
    return fn


def _tail(path, lines=40):
    try:
        with open(path, 'rb') as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 16384))
            data = f.read().decode(errors='replace')
    except OSError:
        return ''
    return '\n'.join(data.splitlines()[-lines:])


# ---------------------------------------------------------------------------
# XMPP probing
# ---------------------------------------------------------------------------

STREAM_HEADER = ("<?xml version='1.0'?><stream:stream to='%s' version='1.0' "
                 "xml:lang='en' xmlns='jabber:client' "
                 "xmlns:stream='http://etherx.jabber.org/streams'>")
_FEATURES_END = re.compile(rb'</(?:\w+:)?features>|<(?:\w+:)?features(?:\s[^>]*)?/>')


def _read_until(sock, pattern, deadline, buf=b''):
    while not pattern.search(buf):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout('timed out waiting for %r (got %r)' % (pattern.pattern, buf[-300:]))
        sock.settimeout(left)
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError('connection closed (got %r)' % buf[-300:])
        buf += chunk
    return buf


def _features_of(buf):
    """The <stream:features> element text from a buffer holding the stream
    header and the features."""
    m = re.search(rb'<(?:\w+:)?features[\s>/].*', buf, re.S)
    if not m:
        raise ValueError('no features in %r' % buf[-300:])
    text = m.group(0)
    end = _FEATURES_END.search(text)
    return text[:end.end()].decode('utf-8', 'replace')


def client_tls_context(ca_file=None, max_version=None):
    """An ssl.SSLContext verifying against ca_file (None: no verification)."""
    if ca_file:
        ctx = ssl.create_default_context(cafile=ca_file)
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if max_version == '1.2':
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    elif max_version == '1.3':
        ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    return ctx


def probe_features(host, port, domain, mode='plain', ctx=None, server_name=None,
                   timeout=5.0):
    """Open a c2s stream and return the <stream:features> text.

    mode 'plain': the features of the first, cleartext stream;
         'starttls': do STARTTLS with ctx and return the features of the
                     restarted stream (the SASL mechanisms);
         'direct': TLS from the first byte (XEP-0368), features after it.
    ctx defaults to no verification; server_name defaults to domain.
    Returns (features_text, TLS version string such as 'TLSv1.3' or None).
    Certificate errors raise ssl.SSLCertVerificationError."""
    deadline = time.monotonic() + timeout
    ctx = ctx or client_tls_context(None)
    server_name = server_name or domain
    raw = socket.create_connection((host, port), timeout=timeout)
    sock = raw
    try:
        if mode == 'direct':
            sock = ctx.wrap_socket(raw, server_hostname=server_name)
        sock.sendall((STREAM_HEADER % domain).encode())
        buf = _read_until(sock, _FEATURES_END, deadline)
        features = _features_of(buf)
        if mode == 'starttls':
            if 'urn:ietf:params:xml:ns:xmpp-tls' not in features:
                raise ServerError('no STARTTLS offered: %s' % features)
            sock.sendall(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            _read_until(sock, re.compile(rb'<proceed[^>]*>'), deadline)
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            sock = ctx.wrap_socket(raw, server_hostname=server_name)
            sock.sendall((STREAM_HEADER % domain).encode())
            buf = _read_until(sock, _FEATURES_END, deadline)
            features = _features_of(buf)
        tls = sock if isinstance(sock, ssl.SSLSocket) else None
        version = tls.version() if tls else None
        # close politely: let the server close first, so that it has no
        # connection left half-open (Prosody's shutdown re-polls every 1 s
        # while any connection is open)
        try:
            sock.sendall(b'</stream:stream>')
            _read_until(sock, re.compile(rb'</stream:stream>'),
                        min(deadline, time.monotonic() + 1.0), buf)
        except (OSError, ValueError):
            pass
        return features, version
    finally:
        try:
            sock.close()
        except OSError:
            pass
        raw.close()


def sasl_mechanisms(features_text):
    """The SASL mechanism names in a <stream:features> text."""
    return re.findall(r'<mechanism>\s*([^<\s]+)\s*</mechanism>', features_text)


# ---------------------------------------------------------------------------
# config writers
# ---------------------------------------------------------------------------

def _lua(v):
    if v is None:
        return 'nil'
    if v is True or v is False:
        return 'true' if v else 'false'
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        out = ['"']
        for ch in v:
            if ch in '"\\':
                out.append('\\' + ch)
            elif ch == '\n':
                out.append('\\n')
            elif ord(ch) < 32:
                out.append('\\%03d' % ord(ch))
            else:
                out.append(ch)
        out.append('"')
        return ''.join(out)
    if isinstance(v, (list, tuple, set)):
        return '{ ' + ', '.join(_lua(x) for x in v) + ' }'
    if isinstance(v, dict):
        parts = []
        for k, x in v.items():
            key = k if re.fullmatch(r'[A-Za-z_]\w*', str(k)) else '[%s]' % _lua(k)
            parts.append('%s = %s' % (key, _lua(x)))
        return '{ ' + '; '.join(parts) + ' }'
    raise TypeError('cannot write %r as Lua' % (v,))


_YAML_PLAIN = re.compile(r'[A-Za-z_/][A-Za-z0-9_./:-]*')


def _yaml_scalar(v):
    if v is None:
        return 'null'
    if v is True or v is False:
        return 'true' if v else 'false'
    if isinstance(v, (int, float)):
        return repr(v)
    s = str(v)
    if _YAML_PLAIN.fullmatch(s) and s.lower() not in ('true', 'false', 'yes', 'no', 'on', 'off', 'null', 'y', 'n'):
        return s
    return json.dumps(s)


def _yaml(v, indent=0):
    """Block-style YAML; plain scalars stay plain (ejabberd reads plain
    scalars as atoms and quoted ones as strings)."""
    pad = ' ' * indent
    if isinstance(v, dict):
        if not v:
            return '{}'
        lines = []
        for k, x in v.items():
            key = _yaml_scalar(k)
            if isinstance(x, (dict, list, tuple)) and x:
                lines.append('%s%s:\n%s' % (pad, key, _yaml(x, indent + 2)))
            else:
                lines.append('%s%s: %s' % (pad, key, _yaml(x, indent + 2) if isinstance(x, (dict, list, tuple)) else _yaml_scalar(x)))
        return '\n'.join(lines)
    if isinstance(v, (list, tuple)):
        if not v:
            return '[]'
        lines = []
        for x in v:
            if isinstance(x, (dict, list, tuple)) and x:
                inner = _yaml(x, indent + 2)
                lines.append('%s-\n%s' % (pad, inner))
            else:
                lines.append('%s- %s' % (pad, _yaml(x) if isinstance(x, (dict, list, tuple)) else _yaml_scalar(x)))
        return '\n'.join(lines)
    return _yaml_scalar(v)


def _deep_merge(base, over):
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _deep_merge(base[k], v)
        elif v is None:
            base.pop(k, None)
        else:
            base[k] = v
    return base


# ---------------------------------------------------------------------------
# process registry and emergency cleanup
# ---------------------------------------------------------------------------

_LIVE = set()          # strong refs: a forgotten server is still cleaned up
_LIVE_LOCK = threading.Lock()
_HANDLERS_INSTALLED = False


def _cleanup_all():
    with _LIVE_LOCK:
        servers = list(_LIVE)
    for srv in servers:
        try:
            srv.stop(timeout=5)
        except Exception as e:   # noqa: BLE001 - best effort at exit
            sys.stderr.write('xmppservers: cleanup of %r failed: %s\n' % (srv, e))


def _on_fatal_signal(signum, _frame):
    _cleanup_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_cleanup():
    """atexit always; SIGTERM/SIGHUP handlers only if nobody else set one and
    we are on the main thread (SIGINT already unwinds `with` blocks)."""
    global _HANDLERS_INSTALLED
    if _HANDLERS_INSTALLED:
        return
    _HANDLERS_INSTALLED = True
    atexit.register(_cleanup_all)
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        try:
            if signal.getsignal(sig) == signal.SIG_DFL:
                signal.signal(sig, _on_fatal_signal)
        except (ValueError, OSError):
            pass


# ---------------------------------------------------------------------------
# the common server class
# ---------------------------------------------------------------------------

# generic feature name -> (prosody modules, ejabberd modules)
FEATURE_MODULES = {
    'roster': (['roster'], ['mod_roster']),
    'smacks': (['smacks'], ['mod_stream_mgmt']),
    'carbons': (['carbons'], ['mod_carboncopy']),
    'ping': (['ping'], ['mod_ping']),
    'disco': (['disco'], ['mod_disco']),
    'version': (['version'], ['mod_version']),
    'offline': (['offline'], ['mod_offline']),
    'muc': ([], ['mod_muc']),             # Prosody: the Component
    'register': (['register'], ['mod_register']),
    'mam': (['mam'], ['mod_mam']),
    'csi': (['csi_simple'], ['mod_client_state']),
    'blocklist': (['blocklist'], ['mod_privacy', 'mod_blocking']),  # ejabberd's needs mod_privacy
    'pep': (['pep'], ['mod_pubsub']),
    'vcard': (['vcard_legacy', 'vcard4'], ['mod_vcard', 'mod_vcard_xupdate']),
    'private': (['private'], ['mod_private']),
    'websocket': (['websocket'], []),     # ejabberd: /ws is always on the http listener
    'bosh': (['bosh'], ['mod_bosh']),
    'time': (['time'], ['mod_time']),
    'last': (['lastactivity'], ['mod_last']),
    'privacy': ([], ['mod_privacy']),
    'caps': ([], ['mod_caps']),
    'adhoc': (['adhoc'], ['mod_adhoc']),
}
DEFAULT_FEATURES = ('roster', 'smacks', 'carbons', 'ping', 'disco', 'version',
                    'offline', 'muc')


class _Server:
    kind = '?'

    def __init__(self, state_dir=None, domain='localhost', pki=None, cert='good',
                 plain_passwords=True, tls_max_version=None, tls_min_version=None,
                 modules=(), disable=(), allow_registration=False, users=None,
                 config=None, extra_config='', start_timeout=30.0, log_level='info',
                 graceful_stop=True, component_secret=None, component_tls=False,
                 component_domain=None, sasl2=False):
        """state_dir: kept if given; else a temporary one, removed by stop().
        pki: a PKI (make_pki) to share; else one is made in state_dir/pki.
        cert: which server certificate to present: good|untrusted|wrongname.
        plain_passwords: plaintext storage (every SCRAM variant offered).
        tls_max_version / tls_min_version: None, '1.2' or '1.3'.
        modules: extra generic feature names (see FEATURE_MODULES) or native
            module names (Prosody 'foo', ejabberd 'mod_foo').
        disable: generic feature names to drop from DEFAULT_FEATURES.
        allow_registration: in-band registration (XEP-0077) from loopback.
        users: {name: password} (or [(name, password)]) registered by start().
        config: dict of extra/overriding config (Prosody: global options;
            ejabberd: deep-merged into the top-level YAML mapping, None
            deletes a key). extra_config: raw text appended (Prosody: in the
            global section; ejabberd: at the end of the YAML).
        start_timeout: seconds until start() gives up (with the log tail).
        graceful_stop: False makes stop() SIGKILL at once (saves ejabberd's
            ~1 s of Erlang init:stop(); fine for throwaway state dirs).
        component_secret: also accept an external component (XEP-0114)
            named component_domain ('comp.' + domain) with this secret, in
            clear on 127.0.0.1:component_port.
        component_tls: that port speaks TLS from the first byte (ejabberd
            only; Prosody 0.12's component ports are cleartext).
        component_domain: another name for it (gnutls takes no
            '*.localhost' wildcard: over TLS use 'example.test').
        sasl2: Prosody only: SASL2 (XEP-0388), Bind2 (XEP-0386) and FAST
            (XEP-0484) from Debian's prosody-modules, made to work on 0.12
            by tests/servers/mod_sasl2_backport.lua; 'sm' adds
            mod_sasl2_sm (SM inline: advertised, but 0.12 never answers)."""
        if cert not in CERT_KINDS:
            raise ValueError('cert must be one of %s' % (CERT_KINDS,))
        for v in (tls_max_version, tls_min_version):
            if v not in (None, '1.2', '1.3'):
                raise ValueError("TLS versions are None, '1.2' or '1.3'")
        self.host = HOST
        self.domain = domain
        self.muc_domain = 'conference.' + domain
        self.cert = cert
        self.plain_passwords = plain_passwords
        self.tls_max_version = tls_max_version
        self.tls_min_version = tls_min_version
        self.extra_modules = list(modules)
        self.disable = set(disable)
        unknown = self.disable - set(DEFAULT_FEATURES)
        if unknown:
            raise ValueError('cannot disable %s' % sorted(unknown))
        self.allow_registration = allow_registration
        self.config_overrides = dict(config or {})
        self.extra_config = extra_config
        self.start_timeout = start_timeout
        self.graceful_stop = graceful_stop
        self.component_secret = component_secret
        self.component_domain = component_domain or 'comp.' + domain
        self.component_port = None
        self.component_tls = component_tls
        self.sasl2 = sasl2
        self.log_level = log_level
        self._own_state = state_dir is None
        self._state_arg = state_dir
        self.state_dir = None
        self._pki_arg = pki
        self.pki = None
        self.users = {}
        self._initial_users = list((users or {}).items() if isinstance(users, dict) else (users or []))
        self.c2s_port = self.direct_tls_port = self.http_port = self.dist_port = None
        self.epmd_port = None
        self.proc = None
        self.pid = None
        self._known = {}          # pid -> starttime of every descendant seen
        self._log_offsets = {}
        self._stdout = None
        self.start_seconds = self.stop_seconds = None

    # -- public API -------------------------------------------------------

    @property
    def ca_file(self):
        return self.pki.ca_cert if self.pki else None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def __repr__(self):
        return '<%s %s c2s=%s tls=%s pid=%s>' % (type(self).__name__, self.domain,
                                                 self.c2s_port, self.direct_tls_port, self.pid)

    def start(self):
        if self.proc is not None:
            raise ServerError('already started')
        t0 = time.monotonic()
        if self._own_state:
            self.state_dir = tempfile.mkdtemp(prefix='epode-%s-' % self.kind)
        else:
            self.state_dir = os.path.abspath(self._state_arg)
            os.makedirs(self.state_dir, exist_ok=True)
        try:
            self.pki = self._pki_arg or make_pki(os.path.join(self.state_dir, 'pki'))
            _install_cleanup()
            attempts = 3
            for attempt in range(attempts):
                self._pick_ports()
                self._prepare()
                self._launch()
                try:
                    self._wait_ready()
                    break
                except ServerError as e:
                    port_clash = re.search(r'in use|eaddrinuse', self._new_log_text(), re.I)
                    self._kill_now()
                    if port_clash and attempt + 1 < attempts:
                        continue
                    raise e
            for user, password in self._initial_users:
                self.register(user, password)
        except BaseException:
            try:
                self.stop(timeout=5)
            except Exception as e:   # noqa: BLE001 - keep the original error
                sys.stderr.write('xmppservers: cleanup after failed start: %s\n' % e)
            raise
        self.start_seconds = time.monotonic() - t0
        return self

    def stop(self, timeout=15.0, graceful=None):
        """SIGTERM the server, wait up to `timeout` s, SIGKILL stragglers,
        verify that none of its descendants survives, remove a temporary
        state dir. graceful=False (default: the graceful_stop option) uses
        SIGKILL right away. Idempotent."""
        t0 = time.monotonic()
        if graceful is None:
            graceful = self.graceful_stop
        try:
            if self.proc is not None:
                if graceful:
                    self._terminate(timeout)
                else:
                    self._kill_now()
                    left = self._reap_known(2.0)
                    self._after_stop()
                    if left:
                        raise ServerError('%s: processes survived SIGKILL: %s' % (self.kind, sorted(left)))
        finally:
            with _LIVE_LOCK:
                _LIVE.discard(self)
            if self._stdout:
                self._stdout.close()
                self._stdout = None
            if self._own_state and self.state_dir and os.path.isdir(self.state_dir):
                shutil.rmtree(self.state_dir, ignore_errors=True)
        self.stop_seconds = time.monotonic() - t0

    def register(self, user, password):
        """Create the account user@domain (or set its password)."""
        raise NotImplementedError

    def info(self):
        """What the CLI prints (JSON-serialisable)."""
        return {
            'server': self.kind, 'host': self.host, 'c2s_port': self.c2s_port,
            'direct_tls_port': self.direct_tls_port, 'http_port': self.http_port,
            'domain': self.domain, 'muc_domain': self.muc_domain,
            'ca_file': self.ca_file, 'cert': self.cert, 'state_dir': self.state_dir,
            'pid': self.pid, 'log_file': self.log_file,
            'users': [{'user': u, 'password': p, 'jid': '%s@%s' % (u, self.domain)}
                      for u, p in self.users.items()],
            'pki': self.pki.as_dict() if self.pki else None,
            'component': {'domain': self.component_domain, 'port': self.component_port,
                          'secret': self.component_secret} if self.component_port else None,
        }

    def descendants(self):
        """{pid: starttime} of the server process and its descendants now."""
        if not self.pid:
            return {}
        return _descendants(self.pid)

    # -- internals -------------------------------------------------------

    def _pick_ports(self):
        ports = _free_ports(6 if self.component_secret else 5)
        (self.c2s_port, self.direct_tls_port, self.http_port, self.dist_port,
         self.epmd_port) = ports[:5]
        self.component_port = ports[5] if self.component_secret else None

    def _ready_ports(self):
        return [self.c2s_port, self.direct_tls_port]

    def _launch(self):
        cmd, env = self._command()
        self._log_offsets = {}
        for f in self._log_files():
            try:
                self._log_offsets[f] = os.path.getsize(f)
            except OSError:
                self._log_offsets[f] = 0
        out_path = os.path.join(self.state_dir, '%s.stdout' % self.kind)
        self._stdout = open(out_path, 'ab')
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=self._stdout, stderr=subprocess.STDOUT,
            cwd=self.state_dir, env=env, close_fds=True, start_new_session=True,
            preexec_fn=_child_setup(os.getpid()))
        self.pid = self.proc.pid
        self._known = {}
        with _LIVE_LOCK:
            _LIVE.add(self)

    def _remember(self):
        if self.pid:
            self._known.update(_descendants(self.pid))

    def _log_files(self):
        return [os.path.join(self.state_dir, '%s.stdout' % self.kind)]

    def _new_log_text(self):
        """What the logs gained since the last launch (state dirs are reusable)."""
        out = []
        for f in self._log_files():
            try:
                with open(f, 'rb') as fh:
                    fh.seek(self._log_offsets.get(f, 0))
                    out.append(fh.read(1 << 20).decode(errors='replace'))
            except OSError:
                pass
        return '\n'.join(out)

    # log lines that mean the start failed even though the process lives on
    FATAL_LOG = None

    def _error(self, what):
        parts = ['%s %s (state dir %s, pid %s, ports c2s=%s direct_tls=%s)' % (
            self.kind, what, self.state_dir, self.pid, self.c2s_port, self.direct_tls_port)]
        for f in self._log_files():
            t = _tail(f)
            if t:
                parts.append('--- tail of %s ---\n%s' % (f, t))
        return ServerError('\n'.join(parts))

    def _wait_ready(self):
        deadline = time.monotonic() + self.start_timeout
        ports = self._ready_ports() + ([self.component_port] if self.component_port else [])
        # 1. the started process (or a descendant) holds every listening socket
        while True:
            if self.proc.poll() is not None:
                raise self._error('exited with status %s during startup' % self.proc.returncode)
            tree = self.descendants()
            self._known.update(tree)
            held = _socket_inodes_of(tree)
            missing = [p for p in ports if not (_listening_inodes(p) & held)]
            if not missing:
                break
            if time.monotonic() > deadline:
                raise self._error('did not listen on port(s) %s within %.0fs' % (missing, self.start_timeout))
            self._check_fatal_log()
            time.sleep(0.02)
        # 2. the c2s port answers a stream header with features (modules loaded)
        last = None
        while True:
            if self.proc.poll() is not None:
                raise self._error('exited with status %s during startup' % self.proc.returncode)
            try:
                feats, _ = probe_features(self.host, self.c2s_port, self.domain, 'plain',
                                          timeout=min(2.0, max(0.2, deadline - time.monotonic())))
                if self._features_ready(feats):
                    break
                last = 'features not ready yet: %s' % feats
            except (OSError, ValueError, ServerError) as e:
                last = repr(e)
            if time.monotonic() > deadline:
                raise self._error('did not answer a stream header within %.0fs (%s)' % (self.start_timeout, last))
            self._check_fatal_log()
            time.sleep(0.05)
        self._check_fatal_log()
        self._remember()

    def _features_ready(self, feats):
        return 'urn:ietf:params:xml:ns:xmpp-tls' in feats

    def _check_fatal_log(self):
        if self.FATAL_LOG is None:
            return
        m = self.FATAL_LOG.search(self._new_log_text())
        if m:
            line_start = m.string.rfind('\n', 0, m.start()) + 1
            line_end = m.string.find('\n', m.end())
            raise self._error('logged a startup error: %s' % m.string[line_start:line_end if line_end >= 0 else None])

    def _kill_now(self):
        """SIGKILL the whole tree at once (failed start)."""
        if self.proc is None:
            return
        self._remember()
        for pid, st in self._known.items():
            if _alive(pid, st):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self._reap_known(0.5)
        self.proc = None
        with _LIVE_LOCK:
            _LIVE.discard(self)
        if self._stdout:
            self._stdout.close()
            self._stdout = None

    def _reap_known(self, wait):
        deadline = time.monotonic() + wait
        while True:
            left = {p: s for p, s in self._known.items() if _alive(p, s)}
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.01)

    def _terminate(self, timeout):
        self._remember()
        proc = self.proc
        if proc.poll() is None:
            try:
                proc.send_signal(signal.SIGTERM)
            except OSError:
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._remember()
                for pid, st in self._known.items():
                    if _alive(pid, st):
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except OSError:
                            pass
                proc.wait(5)
        # descendants that outlived the main process (reparented elsewhere)
        left = self._reap_known(2.0)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid, st in left.items():
                if _alive(pid, st):
                    try:
                        os.kill(pid, sig)
                    except OSError:
                        pass
            left = self._reap_known(1.0)
            if not left:
                break
        self._after_stop()
        self.proc = None
        if left:
            raise ServerError('%s: processes survived stop: %s' % (
                self.kind, ', '.join('%d(%s)' % (p, _comm(p)) for p in left)))

    def _after_stop(self):
        pass

    @property
    def log_file(self):
        return self._log_files()[0] if self.state_dir else None

    def _feature_modules(self, which):
        """Native module names: defaults minus `disable`, plus extras."""
        idx = 0 if which == 'prosody' else 1
        mods = []
        for f in DEFAULT_FEATURES:
            if f not in self.disable:
                mods += FEATURE_MODULES[f][idx]
        if self.allow_registration:
            mods += FEATURE_MODULES['register'][idx]
        for m in self.extra_modules:
            mods += FEATURE_MODULES[m][idx] if m in FEATURE_MODULES else [m]
        seen = []
        for m in mods:
            if m not in seen:
                seen.append(m)
        return seen


# ---------------------------------------------------------------------------
# Prosody
# ---------------------------------------------------------------------------

class Prosody(_Server):
    """Prosody 0.12 on 127.0.0.1; see _Server.__init__ for the options."""
    kind = 'prosody'

    FATAL_LOG = re.compile(r'[ \t](?:modulemanager|portmanager|certmanager|config|startup|[^\s]*:tls)\terror\t')

    HTTP_MODULES = {'websocket', 'bosh', 'http', 'http_files', 'http_file_share',
                    'http_openmetrics', 'invites_register'}

    def _config_path(self):
        return os.path.join(self.state_dir, 'prosody.cfg.lua')

    def _log_files(self):
        return [os.path.join(self.state_dir, 'prosody.log'),
                os.path.join(self.state_dir, 'prosody.stdout')]

    def _uses_http(self):
        return bool(set(self._feature_modules('prosody')) & self.HTTP_MODULES)

    def _ready_ports(self):
        ports = [self.c2s_port, self.direct_tls_port]
        if self._uses_http():
            ports.append(self.http_port)
        return ports

    def _pick_ports(self):
        super()._pick_ports()
        if not self._uses_http():
            self.http_port = None
        self.dist_port = self.epmd_port = None

    def _tls_protocol(self):
        lo, hi = self.tls_min_version or '1.2', self.tls_max_version
        if hi and hi < lo:
            raise ValueError('tls_max_version below tls_min_version')
        if hi == lo:
            return 'tlsv1_%s' % lo[-1]
        if hi is None:
            return 'tlsv1_%s+' % lo[-1]
        return 'tlsv1_2'   # lo 1.2, hi 1.3 == default

    def _prepare(self):
        s = self.state_dir
        os.makedirs(os.path.join(s, 'data'), exist_ok=True)
        os.makedirs(os.path.join(s, 'certs'), exist_ok=True)
        cert, key = self.pki.server_pair(self.cert)
        mods = ['saslauth', 'tls'] + self._feature_modules('prosody')
        if self.sasl2:
            # the backport first: its hooks must run before the modules'
            mods += ['sasl2_backport', 'sasl2', 'sasl2_bind2', 'sasl2_fast', 'csi_simple']
            if self.sasl2 == 'sm':
                mods.append('sasl2_sm')
        disabled = ['s2s', 's2s_auth_certs']
        if 'offline' in self.disable:
            disabled.append('offline')
        muc_mods = ['muc_mam'] if ('mam' in self.extra_modules and 'muc' not in self.disable) else []
        g = {
            'run_as_root': True,
            'pidfile': os.path.join(s, 'prosody.pid'),
            'data_path': os.path.join(s, 'data'),
            'log': [{'levels': {'min': self.log_level}, 'to': 'file',
                     'filename': os.path.join(s, 'prosody.log')}],
            'interfaces': [HOST], 'local_interfaces': [HOST],
            'c2s_interfaces': [HOST], 'c2s_direct_tls_interfaces': [HOST],
            'http_interfaces': [HOST], 'https_interfaces': [HOST],
            'c2s_ports': [self.c2s_port],
            'c2s_direct_tls_ports': [self.direct_tls_port],
            'legacy_ssl_ports': [], 's2s_ports': [], 's2s_direct_tls_ports': [],
            'component_ports': [self.component_port] if self.component_port else [],
            'component_interfaces': [HOST],
            'http_ports': [self.http_port] if self.http_port else [],
            'https_ports': [],
            'network_settings': {'tcp_backlog': 1024},
            'modules_enabled': mods,
            'modules_disabled': disabled,
            'authentication': 'internal_plain' if self.plain_passwords else 'internal_hashed',
            'storage': 'internal',
            'allow_registration': bool(self.allow_registration),
            'c2s_require_encryption': True,
            'certificates': os.path.join(s, 'certs'),
            'ssl': {'certificate': cert, 'key': key, 'protocol': self._tls_protocol()},
            'http_host': self.domain,
        }
        if self.sasl2:
            g['plugin_paths'] = [os.path.dirname(os.path.abspath(__file__))]
        if self.allow_registration:
            g['registration_throttle_max'] = 1000000
            g['min_seconds_between_registrations'] = 0
        g.update(self.config_overrides)
        lines = ['-- generated by tests/servers/xmppservers.py']
        lines += ['%s = %s' % (k, _lua(v)) for k, v in g.items()]
        if self.extra_config:
            lines.append(self.extra_config)
        lines.append('VirtualHost %s' % _lua(self.domain))
        if 'muc' not in self.disable:
            lines.append('Component %s "muc"' % _lua(self.muc_domain))
            if muc_mods:
                lines.append('\tmodules_enabled = %s' % _lua(muc_mods))
        if self.component_secret:
            lines.append('Component %s' % _lua(self.component_domain))
            lines.append('\tcomponent_secret = %s' % _lua(self.component_secret))
        _write_atomic(self._config_path(), '\n'.join(lines) + '\n', 0o600)

    def _command(self):
        env = _clean_env(HOME=self.state_dir)
        return [PROSODY_BIN, '-F', '--config', self._config_path()], env

    def register(self, user, password):
        if self.state_dir is None:
            raise ServerError('register() before start()')
        r = subprocess.run(
            [PROSODYCTL_BIN, '--config', self._config_path(), 'register', user, self.domain, password],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            cwd=self.state_dir, env=_clean_env(HOME=self.state_dir), timeout=30)
        if r.returncode != 0:
            raise ServerError('prosodyctl register %s@%s failed (%d): %s' % (
                user, self.domain, r.returncode, r.stdout.decode(errors='replace')))
        self.users[user] = password


# ---------------------------------------------------------------------------
# ejabberd
# ---------------------------------------------------------------------------

class Ejabberd(_Server):
    """ejabberd 23.01 on 127.0.0.1, run as `erl` directly (not ejabberdctl);
    see _Server.__init__ for the options."""
    kind = 'ejabberd'
    _epmd_before = frozenset()
    # More `listen` entries (dicts as in ejabberd.yml), e.g. an HTTPS
    # listener for mod_http_upload: set on a subclass or instance before
    # start() (config= cannot add to a list).
    extra_listeners = ()

    def _log_files(self):
        d = os.path.join(self.state_dir, 'log')
        return [os.path.join(d, 'ejabberd.log'), os.path.join(d, 'error.log'),
                os.path.join(self.state_dir, 'ejabberd.stdout')]

    def _ready_ports(self):
        return [self.c2s_port, self.direct_tls_port, self.http_port]

    def _node_name(self):
        """Fixed per state dir (mnesia is tied to it)."""
        path = os.path.join(self.state_dir, 'nodename')
        try:
            with open(path) as f:
                name = f.read().strip()
            if name:
                return name
        except OSError:
            pass
        name = 'epode-%s@127.0.0.1' % os.urandom(4).hex()
        _write_atomic(path, name + '\n')
        return name

    def _tls_options(self):
        opts = ['no_sslv3', 'no_tlsv1', 'no_tlsv1_1', 'cipher_server_preference', 'no_compression']
        if self.tls_max_version == '1.2':
            opts.append('no_tlsv1_3')
        if self.tls_min_version == '1.3':
            opts.append('no_tlsv1_2')
        return opts

    def _prepare(self):
        s = self.state_dir
        for d in ('log', 'db', 'home'):
            os.makedirs(os.path.join(s, d), exist_ok=True)
        cookie = os.path.join(s, 'home', '.erlang.cookie')
        if not os.path.exists(cookie):
            _write_atomic(cookie, os.urandom(16).hex().upper(), 0o400)
        os.chmod(cookie, 0o400)
        # no DNS: hosts file only
        _write_atomic(os.path.join(s, 'inetrc'),
                      '{lookup,[file]}.\n{host,{127,0,0,1},["localhost"]}.\n')
        tls_opts = self._tls_options()
        c2s_common = {
            'ip': HOST, 'module': 'ejabberd_c2s', 'backlog': 1024,
            'max_stanza_size': 262144, 'shaper': 'c2s_shaper', 'access': 'c2s',
            'protocol_options': tls_opts,
        }
        modules = {}
        for m in self._feature_modules('ejabberd'):
            modules[m] = {}
        if 'mod_roster' in modules:
            modules['mod_roster'] = {'versioning': True}
        if 'mod_stream_mgmt' in modules:
            modules['mod_stream_mgmt'] = {'resend_on_timeout': 'if_offline'}
        if 'mod_muc' in modules:
            modules['mod_muc'] = {'host': 'conference.@HOST@', 'access': ['allow'],
                                  'access_admin': [{'allow': 'admin'}],
                                  'access_create': 'muc_create', 'access_persistent': 'muc_create'}
            if 'mod_mam' in modules:
                modules['mod_muc']['access_mam'] = ['allow']
                modules['mod_muc']['default_room_options'] = {'mam': True}
        if 'mod_register' in modules:
            modules['mod_register'] = {'access': 'register', 'ip_access': 'all'}
        if 'mod_pubsub' in modules:
            modules['mod_pubsub'] = {'access_createnode': 'local', 'plugins': ['flat', 'pep']}
        if 'mod_mam' in modules:
            modules['mod_mam'] = {'default': 'always'}
        modules['mod_http_api'] = {}
        modules['mod_admin_extra'] = {}   # change_password, add_rosteritem, ... for test setup
        cfg = {
            'hosts': [self.domain],
            'loglevel': self.log_level,
            'log_rotate_count': 0,
            'certfiles': [self.pki.server_pem(self.cert)],
            'ca_file': self.pki.ca_cert,
            'c2s_protocol_options': tls_opts,
            # as Debian's packaged config: no DIGEST-MD5, no X-OAUTH2 (no tokens here)
            'disable_sasl_mechanisms': ['digest-md5', 'x-oauth2'],
            'auth_method': ['internal'],
            'auth_password_format': 'plain' if self.plain_passwords else 'scram',
            'registration_timeout': 'infinity',
            'listen': [
                dict(c2s_common, port=self.c2s_port, starttls=True, starttls_required=True),
                dict(c2s_common, port=self.direct_tls_port, tls=True),
                {'port': self.http_port, 'ip': HOST, 'module': 'ejabberd_http', 'backlog': 1024,
                 'request_handlers': {'/api': 'mod_http_api', '/ws': 'ejabberd_http_ws',
                                      '/bosh': 'mod_bosh'}},
            ] + ([{'port': self.component_port, 'ip': HOST, 'module': 'ejabberd_service',
                   'tls': bool(self.component_tls),
                   'certfile': self.pki.server_pem(self.cert),
                   'hosts': {self.component_domain: {'password': self.component_secret}}}]
                 if self.component_port else []) + [dict(l) for l in self.extra_listeners],
            's2s_access': 'none',
            'acl': {'local': {'user_regexp': ''}, 'loopback': {'ip': ['127.0.0.0/8']}},
            'access_rules': {
                'local': {'allow': 'local'},
                'c2s': {'allow': 'all'},
                'muc_create': {'allow': 'local'},
                'register': {'allow': 'all'} if self.allow_registration else {'deny': 'all'},
                'trusted_network': {'allow': 'loopback'},
            },
            'api_permissions': {
                'loopback admin': {'who': {'ip': '127.0.0.1/8'}, 'what': ['*']},
            },
            'shaper': {'normal': {'rate': 3000, 'burst_size': 20000}, 'fast': 100000000},
            'shaper_rules': {
                'max_user_sessions': 100000,
                'max_user_offline_messages': 5000,
                'c2s_shaper': 'none',
                's2s_shaper': 'fast',
            },
            'modules': modules,
        }
        _deep_merge(cfg, self.config_overrides)
        text = '# generated by tests/servers/xmppservers.py\n' + _yaml(cfg) + '\n'
        if self.extra_config:
            text += self.extra_config + '\n'
        _write_atomic(os.path.join(s, 'ejabberd.yml'), text, 0o600)

    def _command(self):
        s = self.state_dir
        env = _clean_env(
            HOME=os.path.join(s, 'home'),
            ERL_LIBS=EJABBERD_ERL_LIBS,
            EJABBERD_CONFIG_PATH=os.path.join(s, 'ejabberd.yml'),
            EJABBERD_LOG_PATH=os.path.join(s, 'log', 'ejabberd.log'),
            EJABBERD_PID_PATH=os.path.join(s, 'ejabberd.pid'),
            ERL_CRASH_DUMP=os.path.join(s, 'log', 'erl_crash.dump'),
            ERL_INETRC=os.path.join(s, 'inetrc'),
            ERL_EPMD_ADDRESS=HOST,
            # -erl_epmd_port alone still registers with an epmd on 4369 if
            # one runs: point the epmd client at a port where none listens
            ERL_EPMD_PORT=self.epmd_port,
            ERL_MAX_PORTS=32000,
            ERL_MAX_ETS_TABLES=1400,
            CONTRIB_MODULES_PATH=os.path.join(s, 'contrib'),
            CONTRIB_MODULES_CONF_DIR=os.path.join(s, 'contrib', 'conf'),
        )
        cmd = [ERL_BIN, '-name', self._node_name(),
               '+K', 'true', '+P', '250000',
               '-env', 'ERL_CRASH_DUMP_BYTES', '0',
               '-erl_epmd_port', str(self.dist_port), '-start_epmd', 'false',
               '-kernel', 'inet_dist_use_interface', '{127,0,0,1}',
               '-mnesia', 'dir', '"%s"' % os.path.join(s, 'db'),
               '-s', 'ejabberd', '-noinput', '-noshell']
        return cmd, env

    def _launch(self):
        self._epmd_before = set(_epmd_pids().items())
        super()._launch()

    def _after_stop(self):
        """We run with -start_epmd false; make sure no epmd of ours appeared."""
        home = 'HOME=%s' % os.path.join(self.state_dir, 'home')
        stray = [pid for pid, st in _epmd_pids().items()
                 if (pid, st) not in self._epmd_before and _environ_has(pid, home)]
        for pid in stray:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if stray:
            raise ServerError('ejabberd left epmd running (pids %s); killed it' % stray)

    def _api(self, command, args, timeout=10.0):
        conn = http.client.HTTPConnection(self.host, self.http_port, timeout=timeout)
        try:
            conn.request('POST', '/api/' + command, body=json.dumps(args),
                         headers={'Content-Type': 'application/json'})
            r = conn.getresponse()
            body = r.read().decode(errors='replace')
            return r.status, body
        finally:
            conn.close()

    def api(self, command, **args):
        """Call an ejabberd command through mod_http_api (loopback only);
        returns the decoded JSON result, raises ServerError on failure."""
        status, body = self._api(command, args)
        if status != 200:
            raise ServerError('ejabberd api %s %s: HTTP %d %s' % (command, args, status, body))
        try:
            return json.loads(body)
        except ValueError:
            return body

    def register(self, user, password):
        if self.proc is None:
            raise ServerError('register() needs a running ejabberd')
        status, body = self._api('register', {'user': user, 'host': self.domain, 'password': password})
        if status == 409 or (status != 200 and 'already registered' in body):
            status, body = self._api('change_password', {'user': user, 'host': self.domain,
                                                          'newpass': password})
        if status != 200:
            raise ServerError('ejabberd register %s@%s: HTTP %d %s' % (user, self.domain, status, body))
        self.users[user] = password


SERVERS = {'prosody': Prosody, 'ejabberd': Ejabberd}


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------

def _cli_run(args):
    users = []
    for spec in args.user or []:
        if ':' not in spec:
            raise SystemExit('--user wants NAME:PASSWORD, got %r' % spec)
        users.append(tuple(spec.split(':', 1)))
    cls = SERVERS[args.server]
    srv = cls(state_dir=args.state, domain=args.domain, cert=args.cert, users=users,
              plain_passwords=not args.hashed_passwords, tls_max_version=args.tls_max,
              tls_min_version=args.tls_min,
              modules=(args.module or []) + (['websocket'] if args.websocket else []),
              # ws:// on loopback: Prosody offers SASL there only when told to
              config={'consider_websocket_secure': True}
              if args.websocket and args.server == 'prosody' else None,
              disable=args.disable or (), allow_registration=args.allow_registration,
              start_timeout=args.timeout, graceful_stop=not args.fast_stop,
              component_secret=args.component_secret, sasl2=args.sasl2)

    # signals only set a flag and wake the loop up
    rfd, wfd = os.pipe()
    os.set_blocking(wfd, False)
    got = []

    def on_signal(signum, _frame):
        got.append(signum)
        try:
            os.write(wfd, b'x')
        except OSError:
            pass
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)

    try:
        srv.start()
    except ServerError as e:
        sys.stderr.write('%s\n' % e)
        return 1
    try:
        info = srv.info()
        info['start_seconds'] = round(srv.start_seconds, 3)
        if args.websocket:
            info['websocket_url'] = 'ws://%s:%d%s' % (HOST, srv.http_port, {
                'prosody': '/xmpp-websocket', 'ejabberd': '/ws'}[srv.kind])
        line = json.dumps(info, sort_keys=True)
        if args.info_file:
            _write_atomic(args.info_file, line + '\n')
        try:
            sys.stdout.write(line + '\n')
            sys.stdout.flush()
        except OSError:
            pass
        watch = [rfd]
        if not args.no_stdin:
            watch.append(sys.stdin.fileno())
        while not got:
            try:
                ready, _, _ = select.select(watch, [], [])
            except InterruptedError:
                continue
            if sys.stdin.fileno() in ready and sys.stdin.fileno() in watch:
                try:
                    data = os.read(sys.stdin.fileno(), 4096)
                except OSError:
                    data = b''
                if not data:
                    break
            if rfd in ready:
                break
    finally:
        srv.stop()
        if args.info_file:
            try:
                os.unlink(args.info_file)
            except OSError:
                pass
    sys.stderr.write('%s stopped (start %.2fs, stop %.2fs)\n' % (srv.kind, srv.start_seconds or 0,
                                                                  srv.stop_seconds or 0))
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest='cmd', required=True)
    r = sub.add_parser('run', help='run a server until stdin reaches EOF or a signal comes')
    r.add_argument('server', choices=sorted(SERVERS))
    r.add_argument('--state', metavar='DIR', help='state directory (kept); default: a temporary one')
    r.add_argument('--user', action='append', metavar='NAME:PASSWORD', help='register an account (repeatable)')
    r.add_argument('--cert', choices=CERT_KINDS, default='good')
    r.add_argument('--domain', default='localhost')
    r.add_argument('--tls-max', choices=('1.2', '1.3'))
    r.add_argument('--tls-min', choices=('1.2', '1.3'))
    r.add_argument('--module', action='append', metavar='NAME', help='enable a feature/module (repeatable)')
    r.add_argument('--disable', action='append', metavar='NAME', choices=DEFAULT_FEATURES,
                   help='disable a default feature (repeatable)')
    r.add_argument('--allow-registration', action='store_true', help='in-band registration from loopback')
    r.add_argument('--hashed-passwords', action='store_true', help='hashed storage (one SCRAM variant)')
    r.add_argument('--timeout', type=float, default=30.0, help='start timeout, seconds')
    r.add_argument('--fast-stop', action='store_true', help='stop with SIGKILL (no graceful shutdown)')
    r.add_argument('--component-secret', metavar='SECRET',
                   help="also accept the component comp.DOMAIN (XEP-0114) with this secret")
    r.add_argument('--sasl2', nargs='?', const=True, choices=(True, 'sm'), default=False,
                   help="Prosody: SASL2, Bind2 and FAST (prosody-modules with the test backport); "
                        "'--sasl2 sm' also SM inline")
    r.add_argument('--no-stdin', action='store_true',
                   help='ignore stdin (for `&` in scripts, where stdin is /dev/null); stop on signal only')
    r.add_argument('--info-file', metavar='PATH', help='also write the JSON line to PATH (removed at exit)')
    r.add_argument('--websocket', action='store_true',
                   help='XMPP over WebSocket (RFC 7395) on the HTTP port, ws:// on loopback '
                        '(Prosody: consider_websocket_secure); the JSON gives websocket_url')
    args = ap.parse_args(argv)
    if args.cmd == 'run':
        return _cli_run(args)
    return 2


if __name__ == '__main__':
    sys.exit(main())
