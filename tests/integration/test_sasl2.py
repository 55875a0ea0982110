"""Modern login against real servers: SASL2 (XEP-0388), Bind2 (XEP-0386)
and FAST (XEP-0484) on Prosody 0.12 with the prosody-modules SASL2 family
(made to work there by tests/servers/mod_sasl2_backport.lua: sasl2=True),
and the clean fallback to RFC 6120 SASL where the server has no SASL2
(ejabberd 23.01, Prosody without the modules). Driven through
examples/epode-send --verbose (the XML trace) and --fast-token-file.

Stream management inside SASL2 is not tested here: Prosody 0.12 advertises
it (with mod_sasl2_sm) but never answers; tests/unit/test_sasl2.c covers it
against scripted servers, and the fallback to the classic <enable/> is
checked here with sasl2='sm'."""

import os
import re
import stat
import subprocess

import pytest

import integ_util as iu


def _fixture(**kw):
    @pytest.fixture(scope='module')
    def fixture(pki):
        srv = iu.start_server('prosody', pki, **kw)
        try:
            yield srv
        finally:
            srv.stop()
    return fixture


sasl2_prosody = _fixture(sasl2=True)
sasl2_prosody_tls12 = _fixture(sasl2=True, tls_max_version='1.2')
sasl2_prosody_sm = _fixture(sasl2='sm')


def send(bins, srv, tmp_path, *extra, user='alice', direct=False):
    pw = iu.write_password_file(tmp_path, user)
    argv = ([bins['epode_send']] + iu.conn_args(srv, direct=direct) +
            ['--jid', iu.jid(srv, user), '--password-file', pw, '--verbose'] + list(extra) +
            [iu.jid(srv, 'bob'), 'hello'])
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def sent(r, pattern):
    """The client's lines (SEND ...) that match pattern."""
    return [l for l in r.stderr.splitlines() if l.startswith('SEND ') and re.search(pattern, l)]


def ready_line(r):
    m = re.search(r'\[conn\] ready as (\S+) \((.*)\)$', r.stderr, re.M)
    assert m, r.stderr[-3000:]
    return m.group(1), m.group(2)


def test_sasl2_bind2_and_a_fast_token_at_the_first_login(bins, sasl2_prosody, tmp_path):
    tok = tmp_path / 'token'
    r = send(bins, sasl2_prosody, tmp_path, '--fast-token-file', str(tok))
    assert r.returncode == 0, r.stderr[-3000:]
    auth = sent(r, r'<authenticate ')
    assert len(auth) == 1
    assert re.search(r"mechanism='SCRAM-SHA-", auth[0])
    assert "<bind xmlns='urn:xmpp:bind:0'><tag>epode</tag></bind>" in auth[0]
    assert re.search(r"<user-agent id='[0-9a-f-]{36}'>", auth[0])
    assert "<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-EXPR'/>" in auth[0]
    assert not sent(r, r"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'")
    assert not sent(r, r'urn:ietf:params:xml:ns:xmpp-bind')  # bound inline
    # one stream restart fewer: the header goes out twice (before and after STARTTLS)
    assert len(sent(r, r'<stream:stream')) == 2
    jid, security = ready_line(r)
    assert jid.startswith('alice@%s/epode~' % sasl2_prosody.domain)
    assert 'SASL2 SCRAM-SHA-' in security
    # the token never reaches the log; the file is private
    body = tok.read_text()
    token = re.search(r'^token (\S+)$', body, re.M).group(1)
    at = r.stderr.find(token)
    assert at < 0, r.stderr[max(0, at - 300):at + 100]
    assert 'not logged: it may carry a token]' in r.stderr
    assert stat.S_IMODE(os.stat(tok).st_mode) == 0o600
    assert re.search(r'^mechanism HT-SHA-256-EXPR$', body, re.M)
    assert re.search(r'^jid alice@%s$' % re.escape(sasl2_prosody.domain), body, re.M)


def test_a_single_run_without_a_token_file_asks_for_no_token(bins, sasl2_prosody, tmp_path):
    # it could not keep one, and the server would hold it for weeks
    r = send(bins, sasl2_prosody, tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    auth = sent(r, r'<authenticate ')
    assert len(auth) == 1 and '<request-token' not in auth[0]


def test_fast_reauthentication_and_reconnection_use_the_token(bins, sasl2_prosody, tmp_path):
    tok = tmp_path / 'token'
    assert send(bins, sasl2_prosody, tmp_path, '--fast-token-file', str(tok)).returncode == 0
    ua = re.search(r'^user-agent (\S+)$', tok.read_text(), re.M).group(1)
    r = send(bins, sasl2_prosody, tmp_path, '--fast-token-file', str(tok))
    assert r.returncode == 0, r.stderr[-3000:]
    auth = sent(r, r'<authenticate ')
    assert len(auth) == 1 and "mechanism='HT-SHA-256-EXPR'" in auth[0]
    assert "<fast xmlns='urn:xmpp:fast:0'/>" in auth[0]
    assert "id='%s'" % ua in auth[0]  # the same client id as when it was issued
    assert 'SASL2 HT-SHA-256-EXPR' in ready_line(r)[1]


def test_fast_uniq_on_tls12(bins, sasl2_prosody_tls12, tmp_path):
    tok = tmp_path / 'token'
    r = send(bins, sasl2_prosody_tls12, tmp_path, '--fast-token-file', str(tok))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "mechanism='HT-SHA-256-UNIQ'/>" in sent(r, r'<authenticate ')[0]
    r = send(bins, sasl2_prosody_tls12, tmp_path, '--fast-token-file', str(tok))
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'TLS 1.2' in ready_line(r)[1] and 'SASL2 HT-SHA-256-UNIQ' in ready_line(r)[1]


def test_refused_token_is_dropped_and_the_password_logs_in(bins, sasl2_prosody, tmp_path):
    tok = tmp_path / 'token'
    assert send(bins, sasl2_prosody, tmp_path, '--fast-token-file', str(tok)).returncode == 0
    body = re.sub(r'^token \S+$', 'token secret-token:fast-not-this-one', tok.read_text(), flags=re.M)
    tok.write_text(body)
    r = send(bins, sasl2_prosody, tmp_path, '--fast-token-file', str(tok))
    assert r.returncode == 0, r.stderr[-3000:]
    auth = sent(r, r'<authenticate ')
    assert len(auth) == 2
    assert 'HT-SHA-256' in auth[0] and 'SCRAM-SHA-' in auth[1]
    assert 'refused the FAST token (not-authorized)' in r.stderr
    assert 'SASL2 SCRAM-SHA-' in ready_line(r)[1]
    # a fresh token replaced the refused one
    assert 'fast-not-this-one' not in tok.read_text()
    assert re.search(r'^token \S+$', tok.read_text(), re.M)


def test_token_of_another_account_is_not_presented(bins, sasl2_prosody, tmp_path):
    tok = tmp_path / 'token'
    assert send(bins, sasl2_prosody, tmp_path, '--fast-token-file', str(tok)).returncode == 0
    r = send(bins, sasl2_prosody, tmp_path, '--fast-token-file', str(tok), user='bob')
    assert r.returncode == 0, r.stderr[-3000:]
    auth = sent(r, r'<authenticate ')
    assert len(auth) == 1 and 'HT-SHA-256' not in auth[0].split('>')[0]
    assert 'ignored a FAST token stored for alice@' in r.stderr


def test_sm_is_enabled_after_a_bind2_login(bins, sasl2_prosody, tmp_path):
    # --count turns stream management on; no SM offered inline here: the
    # features after <success/> offer it, and the classic <enable/> follows
    r = send(bins, sasl2_prosody, tmp_path, '--count', '3')
    assert r.returncode == 0, r.stderr[-3000:]
    assert "urn:xmpp:sm:3" not in sent(r, r'<authenticate ')[0]
    assert sent(r, r"^SEND <enable xmlns='urn:xmpp:sm:3' resume='true'/>$")
    assert re.search(r"RECV .*<enabled [^>]*xmlns='urn:xmpp:sm:3'", r.stderr)


def test_inline_sm_unanswered_falls_back_to_classic_enable(bins, sasl2_prosody_sm, tmp_path):
    # Prosody 0.12 with mod_sasl2_sm advertises SM inline, then never
    # answers that login at all: after the login timeout, once more at
    # once without it (no disconnection reported), and SM the classic way
    r = send(bins, sasl2_prosody_sm, tmp_path, '--count', '3', '--timeout', '3')
    assert r.returncode == 0, r.stderr[-3000:]
    auth = sent(r, r'<authenticate ')
    assert len(auth) == 2
    assert "<enable xmlns='urn:xmpp:sm:3' resume='true'/></bind>" in auth[0]
    assert 'urn:xmpp:sm:3' not in auth[1]
    assert 'login did not complete in time: logging in again at once' in r.stderr
    assert sent(r, r"^SEND <enable xmlns='urn:xmpp:sm:3' resume='true'/>$")
    assert re.search(r"RECV .*<enabled [^>]*xmlns='urn:xmpp:sm:3'", r.stderr)


@pytest.mark.parametrize('kind', ['ejabberd', 'prosody'])
def test_without_sasl2_the_login_is_legacy_sasl(bins, kind, request, tmp_path):
    srv = request.getfixturevalue(kind)  # the suite's servers: no SASL2
    tok = tmp_path / 'token'
    r = send(bins, srv, tmp_path, '--fast-token-file', str(tok))
    assert r.returncode == 0, r.stderr[-3000:]
    assert not sent(r, r'<authenticate ')
    assert sent(r, r"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'")
    security = ready_line(r)[1]
    assert 'SASL2' not in security and 'SASL SCRAM-SHA-' in security
    assert 'token ' not in (tok.read_text() if tok.exists() else '')


def _sanitized_build():
    import json
    try:
        with open(os.path.join(iu.BUILD, 'meson-info', 'intro-buildoptions.json')) as f:
            opts = {o['name']: o['value'] for o in json.load(f)}
    except OSError:
        return False
    return opts.get('b_sanitize', 'none') != 'none'


PY_CLIENT = r'''
import asyncio, sys, epode
host, port, ca, jid, pw, path = sys.argv[1:7]
async def main():
    store = epode.FastTokenFile(path)
    c = epode.Client(jid, pw, server=host, port=int(port), ca_file=ca, fast_token_store=store)
    await c.connect()
    print(c.connection.security)
    print(c.user_agent_id)
    await c.disconnect()
asyncio.run(main())
'''


def test_python_client_keeps_its_token_in_a_fast_token_file(sasl2_prosody, tmp_path):
    py_dir = os.path.join(iu.BUILD, 'bindings', 'python')
    if not os.path.exists(os.path.join(py_dir, 'epode')) or _sanitized_build():
        pytest.skip('the Python binding runs on the gcc flavour')
    tok = str(tmp_path / 'token')
    argv = ['/usr/bin/python3', '-c', PY_CLIENT, sasl2_prosody.host, str(sasl2_prosody.c2s_port),
            sasl2_prosody.ca_file, iu.jid(sasl2_prosody, 'alice'), iu.USERS['alice'], tok]
    env = dict(os.environ, PYTHONPATH=py_dir)
    runs = [subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
            for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr[-3000:]
    first, second = (r.stdout.split('\n') for r in runs)
    assert 'SASL2 SCRAM-SHA-' in first[0]
    assert 'SASL2 HT-SHA-256-EXPR' in second[0]
    assert first[1] == second[1]  # the user-agent id came back from the file
    assert stat.S_IMODE(os.stat(tok).st_mode) == 0o600


LUA_CLIENT = r'''
local epode = require "epode"
local host, port, ca, jid, pw, path = ...
local c = epode.client{ jid = jid, password = pw, server = host, port = tonumber(port),
                        ca_file = ca, fast_token_file = path, verbose = true }
local security
c:on_event(function(name, info, client)
  if name == "ready" then security = info.security; client:close() end
end)
c:connect()
print(c:run())
print(c:user_agent_id())
print(security)
'''


@pytest.mark.skipif(not os.access('/usr/bin/lua5.4', os.X_OK), reason='lua5.4 is not installed')
def test_lua_client_keeps_its_token_in_a_fast_token_file(sasl2_prosody, tmp_path):
    module_dir = os.path.join(iu.BUILD, 'bindings', 'lua')
    if not os.path.exists(os.path.join(module_dir, 'epode.so')) or _sanitized_build():
        pytest.skip('the Lua module runs on the gcc flavour')
    script = tmp_path / 'fast.lua'
    script.write_text(LUA_CLIENT)
    tok = str(tmp_path / 'token')
    argv = ['/usr/bin/lua5.4', str(script), sasl2_prosody.host, str(sasl2_prosody.c2s_port),
            sasl2_prosody.ca_file, iu.jid(sasl2_prosody, 'alice'), iu.USERS['alice'], tok]
    env = dict(os.environ, LUA_CPATH=os.path.join(module_dir, '?.so') + ';;')
    runs = [subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
            for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr[-3000:]
    first, second = (r.stdout.split('\n') for r in runs)
    assert first[0].startswith('closed') and second[0].startswith('closed'), (first, second)
    assert re.search(r"<authenticate [^>]*mechanism='SCRAM-SHA-", runs[0].stderr)
    assert "<request-token xmlns='urn:xmpp:fast:0'" in runs[0].stderr
    assert re.search(r"<authenticate [^>]*mechanism='HT-SHA-256-EXPR'", runs[1].stderr)
    assert 'ready as alice@' in runs[1].stderr
    assert first[1] == second[1]
    # the ready event's info says how the login went (a user could not tell)
    assert 'SASL2 SCRAM-SHA-' in first[2] and 'SASL2 HT-SHA-256-EXPR' in second[2]
    assert stat.S_IMODE(os.stat(tok).st_mode) == 0o600


PY_STUBBORN = r'''
import asyncio, sys, epode
host, port, ca, jid, pw = sys.argv[1:6]
class Stubborn:  # never forgets its (bogus) token
    loads = 0
    stored = []
    def load(self, j):
        self.loads += 1
        return {"jid": jid, "mechanism": "HT-SHA-256-EXPR", "token": "secret-token:bogus",
                "expiry": None}
    def store(self, j, token):
        self.stored.append(None if token is None else token["mechanism"])
async def main():
    s = Stubborn()
    c = epode.Client(jid, pw, server=host, port=int(port), ca_file=ca, fast_token_store=s,
                     user_agent="d4b5a1a2-3c4d-4e5f-8a9b-0c1d2e3f4a5b")
    await c.connect(timeout=30)
    print(c.connection.security)
    print(s.loads, s.stored)
    await c.disconnect()
asyncio.run(main())
'''


def test_a_store_that_keeps_a_refused_token_does_not_loop(sasl2_prosody, tmp_path):
    py_dir = os.path.join(iu.BUILD, 'bindings', 'python')
    if not os.path.exists(os.path.join(py_dir, 'epode')) or _sanitized_build():
        pytest.skip('the Python binding runs on the gcc flavour')
    argv = ['/usr/bin/python3', '-c', PY_STUBBORN, sasl2_prosody.host,
            str(sasl2_prosody.c2s_port), sasl2_prosody.ca_file, iu.jid(sasl2_prosody, 'alice'),
            iu.USERS['alice']]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, PYTHONPATH=py_dir))
    assert r.returncode == 0, r.stderr[-3000:]
    security, counts = r.stdout.split('\n')[:2]
    assert 'SASL2 SCRAM-SHA-' in security
    # asked once; told to forget once; then the password's new token
    assert counts == "1 [None, 'HT-SHA-256-EXPR']", counts
