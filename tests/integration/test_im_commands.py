"""Ad-hoc commands (XEP-0050) through real Prosody and ejabberd: an epode
bot's commands listed and run by a third-party client (slixmpp's
xep_0050) and by another epode client (every action, cancel, an unknown
session), and each server's own commands run by epode (Prosody's uptime
from mod_uptime, ejabberd's ping from mod_adhoc).

This module's servers run with mod_adhoc (and Prosody with mod_uptime)."""

import os
import subprocess
import uuid

import pytest

import integ_util as iu
from integ_util import PYTHON, USERS, jid

HERE = os.path.dirname(os.path.abspath(__file__))
MODULES = {'prosody': ('adhoc', 'uptime'), 'ejabberd': ('adhoc',)}


def _server_fixture(kind):
    @pytest.fixture(scope='module')
    def fixture(pki):
        srv = iu.start_server(kind, pki, modules=MODULES[kind])
        try:
            yield srv
        finally:
            srv.stop()
    return fixture


prosody = _server_fixture('prosody')
ejabberd = _server_fixture('ejabberd')


def fresh_accounts(srv, *prefixes):
    out = []
    for p in prefixes:
        name = '%s-%s' % (p, uuid.uuid4().hex[:8])
        pw = 'pw-%s' % uuid.uuid4().hex[:12]
        srv.register(name, pw)
        USERS[name] = pw
        out.append(name)
    return out


def probe_argv(srv, mode, u1, u2=None, extra=()):
    argv = [iu._binary('tests', 'integration', 'im_commands_probe'), '--server', srv.host,
            '--port', str(srv.c2s_port), '--ca-file', srv.ca_file, '--jid1', jid(srv, u1),
            '--password1', USERS[u1], '--mode', mode]
    if u2:
        argv += ['--jid2', jid(srv, u2), '--password2', USERS[u2]]
    return argv + list(extra)


def run_probe(srv, mode, u1, u2=None, extra=(), timeout=45):
    r = subprocess.run(probe_argv(srv, mode, u1, u2, extra), stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=timeout)
    return r, 'exit %s\n%s\n%s' % (r.returncode, r.stdout, r.stderr[-3000:])


def test_epode_client_runs_another_epodes_commands(server):
    a, c = fresh_accounts(server, 'ca', 'cc')
    r, info = run_probe(server, 'pair', a, c)
    assert r.returncode == 0, info
    lines = [l for l in r.stdout.splitlines() if l.split(' ')[0] in ('list', 'result', 'error')]
    assert lines[:2] == ['list uptime Uptime', 'list echo-form Echo a text'], info
    assert lines[2].startswith('result uptime completed sid=yes notes=info:up for'), info
    assert 'form=result,ticks:' in lines[2], info
    assert lines[3] == 'result echo-form executing sid=yes notes= form=form,text: actions=next,', info
    assert lines[4] == ('result echo-form executing sid=yes notes=warn:last chance form=form,confirm: '
                        'actions=prev,complete,'), info
    assert lines[5] == 'result echo-form executing sid=yes notes= form=form,text:first actions=next,', info
    assert lines[6].startswith('result echo-form executing'), info
    assert lines[7] == ('result echo-form completed sid=yes notes=info:second '
                        'form=result,echo:second actions='), info
    assert lines[8].startswith('result echo-form executing'), info
    assert lines[9].startswith('result echo-form canceled'), info
    assert lines[10] == 'error echo-form bad-request bad-sessionid', info
    assert 'served echo-form canceled' in r.stdout, info
    assert 'sessions open 0' in r.stdout, info


def test_slixmpp_lists_and_runs_an_epode_bots_commands(server):
    a, s = fresh_accounts(server, 'cb', 'cs')
    bot = subprocess.Popen(probe_argv(server, 'bot', a, extra=('--allow', jid(server, s),
                                                               '--count', '2')),
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        first = bot.stdout.readline()
        assert first.startswith('ready A '), first + bot.stderr.read()
        bot_jid = first.split()[2]
        r = subprocess.run([PYTHON, os.path.join(HERE, 'slix_adhoc.py'), '--host', server.host,
                            '--port', str(server.c2s_port), '--ca-file', server.ca_file,
                            '--jid', jid(server, s), '--password', USERS[s], '--to', bot_jid,
                            '--text', 'caf\u00e9 & <tea>'],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        out, err = bot.communicate(timeout=30)
    finally:
        if bot.poll() is None:
            bot.kill()
            bot.communicate()
    info = 'slix exit %s\n%s\n%s\nbot:\n%s\n%s' % (r.returncode, r.stdout, r.stderr[-3000:],
                                                   out, err[-2000:])
    assert r.returncode == 0, info
    lines = [l for l in r.stdout.splitlines() if l.split(' ')[0] in ('list', 'result', 'error')]
    # (slixmpp hands disco items over as a set: their order is lost)
    assert sorted(lines[:2]) == ['list echo-form Echo a text', 'list uptime Uptime'], info
    assert lines[2:] == [
        lines[2],
        'result echo-form executing actions=next',
        'result echo-form executing note=last chance',
        'result echo-form completed echo=caf\u00e9 & <tea>',
        'error bad-request bad-sessionid',
    ], info
    assert lines[2].startswith('result uptime completed up for'), info
    assert bot.returncode == 0 and 'served uptime completed' in out, info
    assert 'served echo-form completed' in out, info


def test_slixmpp_of_another_account_is_refused_without_allow(server):
    a, s = fresh_accounts(server, 'cd', 'ce')
    bot = subprocess.Popen(probe_argv(server, 'bot', a), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = bot.stdout.readline()
        assert first.startswith('ready A '), first + bot.stderr.read()
        r = subprocess.run([PYTHON, os.path.join(HERE, 'slix_adhoc.py'), '--host', server.host,
                            '--port', str(server.c2s_port), '--ca-file', server.ca_file,
                            '--jid', jid(server, s), '--password', USERS[s],
                            '--to', first.split()[2], '--timeout', '15'],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    finally:
        bot.kill()
        bot.communicate()
    # the list is empty; running uptime is refused as if it did not exist
    assert 'list ' not in r.stdout, r.stdout
    assert r.returncode == 1 and 'item-not-found' in r.stdout + r.stderr, r.stdout + r.stderr


@pytest.mark.parametrize('kind,node', [('prosody', 'uptime'), ('ejabberd', 'ping')])
def test_epode_runs_the_servers_own_command(kind, node, request):
    srv = request.getfixturevalue(kind)
    (a,) = fresh_accounts(srv, 'cs')
    r, info = run_probe(srv, 'server', a, extra=('--node', node))
    assert r.returncode == 0, info
    assert 'list %s ' % node in r.stdout, info
    result = [l for l in r.stdout.splitlines() if l.startswith('result ')]
    assert len(result) == 1 and result[0].startswith('result %s completed' % node), info
    assert 'notes=info:' in result[0], info


def test_epode_runs_a_slixmpp_bots_two_step_command(server):
    a, s = fresh_accounts(server, 'cp', 'cq')
    bot = subprocess.Popen([PYTHON, os.path.join(HERE, 'slix_adhoc_bot.py'), '--host', server.host,
                            '--port', str(server.c2s_port), '--ca-file', server.ca_file,
                            '--jid', jid(server, s), '--password', USERS[s]],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        first = bot.stdout.readline()
        assert first.startswith('ready '), first + bot.stderr.read()
        r, info = run_probe(server, 'peer', a, extra=('--target', first.split()[1],
                                                      '--node', 'greet'))
        out, err = bot.communicate(timeout=30)
    finally:
        if bot.poll() is None:
            bot.kill()
            bot.communicate()
    info += '\nbot:\n%s\n%s' % (out, err[-2000:])
    assert r.returncode == 0, info
    assert 'list greet Greet' in r.stdout, info
    results = [l for l in r.stdout.splitlines() if l.startswith('result ')]
    assert results[0].startswith('result greet executing sid=yes'), info
    assert 'form=form,name:' in results[0] and 'actions=complete,' in results[0], info
    assert results[1].startswith('result greet completed sid=yes notes=info:hello epode'), info
    assert 'greeted epode' in out, info
