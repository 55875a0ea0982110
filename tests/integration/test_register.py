"""In-band registration (XEP-0077) through real Prosody and ejabberd with
registration open (allow_registration=True on this module's servers):
examples/epode-register creates an account, a second attempt is refused
with conflict, the new account logs in (with epode and with slixmpp, a
third-party client), the password changes (new one works, old one no
longer does), and removal makes later logins fail. A server with
registration closed refuses with its condition."""

import os
import subprocess
import sys
import textwrap
import uuid

import pytest

import integ_util as iu

PYTHON = '/usr/bin/python3'


def _reg_fixture(kind):
    @pytest.fixture(scope='module')
    def fixture(pki):
        srv = iu.start_server(kind, pki, allow_registration=True)
        try:
            yield srv
        finally:
            srv.stop()
    return fixture


reg_prosody = _reg_fixture('prosody')
reg_ejabberd = _reg_fixture('ejabberd')


@pytest.fixture(params=iu.KINDS)
def reg_server(request):
    """This module's Prosody, then its ejabberd, both with registration open."""
    return request.getfixturevalue('reg_' + request.param)


@pytest.fixture(scope='session')
def register_bin():
    return iu._binary('examples', 'epode-register')


def fresh_user():
    return 'reg' + uuid.uuid4().hex[:10]


def run_register(register_bin, srv, user, pwfile, *extra, direct=False):
    argv = [register_bin] + iu.conn_args(srv, direct=direct) + [
        '--jid', iu.jid(srv, user), '--password-file', pwfile] + list(extra)
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=60)
    return r, 'epode-register %s\n-> exit %s\nstdout: %s\nstderr: %s' % (
        ' '.join(argv[1:]), r.returncode, r.stdout, r.stderr)


def login(bins, srv, user, password):
    return iu.probe(bins, srv, jid=iu.jid(srv, user), password=password)


def test_register_login_and_conflict(reg_server, register_bin, bins, tmp_path):
    user = fresh_user()
    pw = iu.write_password_file(tmp_path, user, 'Pässw0rd-' + user)
    r, info = run_register(register_bin, reg_server, user, pw)
    assert r.returncode == 0, info
    assert r.stderr == '', info
    res = login(bins, reg_server, user, 'Pässw0rd-' + user)
    iu.assert_logged_in(res, reg_server, user=user)
    # the same name again: refused with its condition
    r, info = run_register(register_bin, reg_server, user, pw)
    assert r.returncode == 1, info
    assert r.stderr.startswith('epode-register: conflict: already registered'), info


def test_register_over_direct_tls(reg_server, register_bin, bins, tmp_path):
    user = fresh_user()
    pw = iu.write_password_file(tmp_path, user, 'direct-' + user)
    r, info = run_register(register_bin, reg_server, user, pw, direct=True)
    assert r.returncode == 0, info
    iu.assert_logged_in(login(bins, reg_server, user, 'direct-' + user), reg_server, user=user)


def test_register_through_a_socks5_proxy(reg_server, register_bin, bins, tmp_path):
    """Registration is a connection kind like the others: through a proxy
    (epode-register --proxy), which is asked for the server."""
    from proxies import Socks5Proxy
    proxy = Socks5Proxy()
    try:
        user = fresh_user()
        pw = iu.write_password_file(tmp_path, user, 'proxied-' + user)
        r, info = run_register(register_bin, reg_server, user, pw, '--proxy', proxy.url())
        assert r.returncode == 0, info
        assert proxy.requests == [(reg_server.host, reg_server.c2s_port)], proxy.requests
    finally:
        proxy.close()
    iu.assert_logged_in(login(bins, reg_server, user, 'proxied-' + user), reg_server, user=user)


def test_change_password(reg_server, register_bin, bins, tmp_path):
    user = fresh_user()
    old = iu.write_password_file(tmp_path, user, 'old-' + user)
    new_path = tmp_path / 'new.pw'
    new_path.write_text('new-%s\n' % user, encoding='utf-8')
    r, info = run_register(register_bin, reg_server, user, old)
    assert r.returncode == 0, info
    r, info = run_register(register_bin, reg_server, user, old, '--change-password', str(new_path))
    assert r.returncode == 0, info
    iu.assert_logged_in(login(bins, reg_server, user, 'new-' + user), reg_server, user=user)
    res = login(bins, reg_server, user, 'old-' + user)
    assert res.rc != 0 and res.disconnected and res.disconnected['reason'] == 'AUTH', res
    # and with the old password the tool cannot change it any more
    r, info = run_register(register_bin, reg_server, user, old, '--change-password', str(new_path))
    assert r.returncode == 1, info


def test_remove_account(reg_server, register_bin, bins, tmp_path):
    user = fresh_user()
    pw = iu.write_password_file(tmp_path, user, 'gone-' + user)
    r, info = run_register(register_bin, reg_server, user, pw)
    assert r.returncode == 0, info
    r, info = run_register(register_bin, reg_server, user, pw, '--remove')
    assert r.returncode == 0, info
    res = login(bins, reg_server, user, 'gone-' + user)
    assert res.rc != 0 and res.disconnected and res.disconnected['reason'] == 'AUTH', res
    # the name is free again
    r, info = run_register(register_bin, reg_server, user, pw)
    assert r.returncode == 0, info


def test_registration_closed(server, register_bin, tmp_path):
    """The shared servers of other modules keep registration closed."""
    user = fresh_user()
    pw = iu.write_password_file(tmp_path, user, 'closed-' + user)
    r, info = run_register(register_bin, server, user, pw)
    assert r.returncode == 1, info
    assert r.stderr.startswith('epode-register: '), info
    cond = r.stderr.split(': ')[1]
    assert cond in ('not-allowed', 'forbidden', 'service-unavailable', 'feature-not-implemented'), info


SLIX_LOGIN = textwrap.dedent('''
    import asyncio, sys
    import slixmpp
    host, port, ca, jid, password = sys.argv[1:6]

    class C(slixmpp.ClientXMPP):
        async def get_dns_records(self, domain, port_=None):
            return [(domain, host, int(port))]

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    c = C(jid, password)
    c.ca_certs = ca
    c.default_domain = slixmpp.JID(jid).domain
    done = loop.create_future()
    c.add_event_handler('session_start', lambda _e: done.done() or done.set_result('ready'))
    c.add_event_handler('failed_auth', lambda _e: done.done() or done.set_result('failed_auth'))
    c.connect(address=(host, int(port)))
    try:
        what = loop.run_until_complete(asyncio.wait_for(done, 20))
    except asyncio.TimeoutError:
        what = 'timeout'
    print(what, c.boundjid.bare, flush=True)
    c.disconnect()
    loop.run_until_complete(asyncio.sleep(0.2))
    sys.exit(0 if what == 'ready' else 1)
''')


def test_slixmpp_logs_in_to_the_account_epode_registered(reg_server, register_bin, tmp_path):
    user = fresh_user()
    pw = iu.write_password_file(tmp_path, user, 'slix-' + user)
    r, info = run_register(register_bin, reg_server, user, pw)
    assert r.returncode == 0, info
    s = subprocess.run([PYTHON, '-c', SLIX_LOGIN, reg_server.host, str(reg_server.c2s_port),
                        reg_server.ca_file, iu.jid(reg_server, user), 'slix-' + user],
                       capture_output=True, text=True, timeout=60)
    info = 'slixmpp exit %s\n%s\n%s' % (s.returncode, s.stdout, s.stderr[-3000:])
    assert s.returncode == 0, info
    assert s.stdout.split() == ['ready', iu.jid(reg_server, user)], info


LUA = '/usr/bin/lua5.4'

def _sanitized_build():
    """The ASan+UBSan flavour's Lua module needs the sanitizer runtime
    preloaded into lua5.4 (its library leaves the runtime to the program):
    the Lua parts run on the gcc flavour, and in tests/lua."""
    import json
    try:
        with open(os.path.join(iu.BUILD, 'meson-info', 'intro-buildoptions.json')) as f:
            opts = json.load(f)
    except (OSError, ValueError):
        return False
    return any(o.get('name') == 'b_sanitize' and o.get('value') not in ('none', '', [])
               for o in opts)


@pytest.mark.skipif(not os.access(LUA, os.X_OK), reason='lua5.4 is not installed')
@pytest.mark.skipif(_sanitized_build(), reason='the sanitized Lua module needs its runtime preloaded')
def test_lua_binding_registers_changes_and_removes(reg_server):
    module_dir = os.path.join(iu.BUILD, 'bindings', 'lua')
    if not os.path.exists(os.path.join(module_dir, 'epode.so')):
        pytest.skip('the Lua module is not built')
    user = fresh_user()
    env = dict(os.environ, LUA_CPATH=os.path.join(module_dir, '?.so') + ';;')
    r = subprocess.run([LUA, os.path.join(os.path.dirname(__file__), 'register_check.lua'),
                        reg_server.host, str(reg_server.c2s_port), reg_server.ca_file,
                        iu.jid(reg_server, user), 'lua-' + user],
                       capture_output=True, text=True, timeout=120, env=env)
    info = 'lua exit %s\n%s\n%s' % (r.returncode, r.stdout, r.stderr[-3000:])
    assert r.returncode == 0, info
    assert "FAILED" not in r.stdout, info
    assert r.stdout.count("\tok") == 7, info


# ---- a CAPTCHA-protected registration (ejabberd's captcha_cmd) ---------------

CAPTCHA_SCRIPT = '''#!/bin/sh
# the test's CAPTCHA: remembers the challenge text, draws a 1x1 PNG
printf '%%s\\n' "$1" >> %(texts)s
printf 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==' | base64 -d
'''


@pytest.fixture(scope='module')
def captcha_ejabberd(pki, tmp_path_factory):
    d = tmp_path_factory.mktemp('captcha')
    texts = d / 'texts'
    texts.write_text('')
    script = d / 'captcha.sh'
    script.write_text(CAPTCHA_SCRIPT % {'texts': str(texts)})
    script.chmod(0o755)
    srv = iu.start_server('ejabberd', pki, allow_registration=True, config={
        'captcha_cmd': str(script),
        'modules': {'mod_register': {'captcha_protected': True}}})
    srv.captcha_texts = str(texts)
    try:
        yield srv
    finally:
        srv.stop()


def test_captcha_registration(captcha_ejabberd, register_bin, bins, tmp_path):
    srv = captcha_ejabberd
    module_dir = os.path.join(iu.BUILD, 'bindings', 'lua')
    have_lua = (os.access(LUA, os.X_OK) and os.path.exists(os.path.join(module_dir, 'epode.so'))
                and not _sanitized_build())
    # the command-line tool without a terminal names what it cannot answer
    user = fresh_user()
    pw = iu.write_password_file(tmp_path, user, 'cap-' + user)
    r, info = run_register(register_bin, srv, user, pw)
    assert r.returncode == 1, info
    assert "the server also asks for 'ocr'" in r.stderr, info
    if have_lua:
        env = dict(os.environ, LUA_CPATH=os.path.join(module_dir, '?.so') + ';;')
        script = os.path.join(os.path.dirname(__file__), 'register_captcha.lua')
        base = [LUA, script, srv.host, str(srv.c2s_port), srv.ca_file]
        # a wrong answer is refused with the server's condition
        r = subprocess.run(base + [iu.jid(srv, user), 'cap-' + user, srv.captcha_texts, 'wrong'],
                           capture_output=True, text=True, timeout=120, env=env)
        info = 'lua exit %s\n%s\n%s' % (r.returncode, r.stdout, r.stderr[-3000:])
        assert r.returncode == 1 and r.stdout.startswith('failed\t'), info
        assert r.stdout.split('\t')[1] in ('not-acceptable', 'bad-request', 'not-allowed'), info
        # the right one registers (the C helper's fill callback, media seen)
        r = subprocess.run(base + [iu.jid(srv, user), 'cap-' + user, srv.captcha_texts],
                           capture_output=True, text=True, timeout=120, env=env)
        info = 'lua exit %s\n%s\n%s' % (r.returncode, r.stdout, r.stderr[-3000:])
        assert r.returncode == 0 and r.stdout.split() == ['ok', 'media'], info
        iu.assert_logged_in(login(bins, srv, user, 'cap-' + user), srv, user=user)
    # and through the Python binding's fill= (a coroutine)
    py_dir = os.path.join(iu.BUILD, 'bindings', 'python')
    if os.path.exists(os.path.join(py_dir, 'epode')) and not _sanitized_build():
        user2 = fresh_user()
        code = textwrap.dedent('''
            import asyncio, sys, epode
            host, port, ca, jid, pw, texts = sys.argv[1:7]
            async def fill(form):  # a coroutine: a human may take a while
                await asyncio.sleep(0.2)
                ocr = form.field("ocr")
                assert ocr is not None and ocr.media is not None
                assert ocr.media.find_text("uri").startswith("cid:")
                assert form.answer.find("query", "jabber:iq:register") is not None
                form["ocr"] = open(texts).read().split()[-1]
            asyncio.run(epode.register(jid, pw, server=host, port=int(port), ca_file=ca,
                                       fill=fill))
            print("ok")
        ''')
        r = subprocess.run([PYTHON, '-c', code, srv.host, str(srv.c2s_port), srv.ca_file,
                            iu.jid(srv, user2), 'cap-' + user2, srv.captcha_texts],
                           capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, PYTHONPATH=py_dir))
        info = 'python exit %s\n%s\n%s' % (r.returncode, r.stdout, r.stderr[-3000:])
        assert r.returncode == 0 and r.stdout.strip() == 'ok', info
        iu.assert_logged_in(login(bins, srv, user2, 'cap-' + user2), srv, user=user2)


def test_captcha_answered_at_the_terminal(captcha_ejabberd, register_bin, bins, tmp_path):
    """epode-register asks a terminal for what the server wants (the CAPTCHA,
    with its media URI shown) and registers with the answer."""
    import pty
    import select
    import time
    srv = captcha_ejabberd
    user = fresh_user()
    pw = iu.write_password_file(tmp_path, user, 'tty-' + user)
    master, slave = pty.openpty()
    argv = [register_bin] + iu.conn_args(srv) + ['--jid', iu.jid(srv, user), '--password-file', pw]
    p = subprocess.Popen(argv, stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(slave)
    try:
        err = b''
        deadline = time.monotonic() + 30
        while b'Enter the text you see: ' not in err and time.monotonic() < deadline:
            r, _, _ = select.select([p.stderr], [], [], 0.5)
            if r:
                chunk = os.read(p.stderr.fileno(), 4096)
                if not chunk:
                    break
                err += chunk
        assert b'Enter the text you see: ' in err, err
        assert b'(image/png: cid:' in err, err  # the media URI shown
        with open(srv.captcha_texts) as f:
            text = f.read().split()[-1]
        os.write(master, (text + '\n').encode())
        out, rest = p.communicate(timeout=30)
        err += rest
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
    assert p.returncode == 0, err
    iu.assert_logged_in(login(bins, srv, user, 'tty-' + user), srv, user=user)
