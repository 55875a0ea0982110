"""The roster helper (epode/roster.h) and the roster example against real
Prosody and ejabberd: a round trip with roster versioning (add, list,
reconnect with the stored version: the server sends nothing or only
changes, and the result equals the server's roster), removal, and the
example's output format. (A push from a stranger cannot be provoked
through a real server; the unit tests cover it.)"""

import os
import subprocess
import uuid

import pytest

from integ_util import BUILD, USERS, _binary, conn_args, jid, write_password_file


@pytest.fixture(scope='module')
def roster_bins():
    return {'probe': _binary('tests', 'integration', 'im_roster_probe'),
            'example': _binary('examples', 'roster')}


def fresh_account(srv, prefix='ro'):
    name = '%s-%s' % (prefix, uuid.uuid4().hex[:8])
    pw = 'pw-%s' % uuid.uuid4().hex[:12]
    srv.register(name, pw)
    USERS[name] = pw
    return name


class Run:
    def __init__(self, argv, proc):
        self.argv = argv
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.lines = proc.stdout.splitlines()
        self.items = {}
        for l in self.lines:
            if l.startswith('item '):
                f = l[5:].split('\t')
                self.items[f[0]] = {'sub': f[1], 'ask': f[2], 'name': f[3],
                                    'groups': sorted(g for g in f[4].split(',') if g)}
        self.sent_vers = [l.split(' ', 1)[1] for l in self.lines if l.startswith('sent-ver ')]
        self.stores = [l for l in self.lines if l.startswith('store ')]
        vers = [l.split(' ', 1)[1] for l in self.lines if l.startswith('ver ')]
        self.ver = vers[-1] if vers else None

    def __repr__(self):
        return 'im_roster_probe %s\n-> exit %s\nstdout:\n%s\nstderr:\n%s' % (
            ' '.join(self.argv[1:]), self.rc, self.stdout, self.stderr[-3000:])


def run_probe(roster_bins, srv, user, *args):
    argv = [roster_bins['probe'], '--server', srv.host, '--port', str(srv.c2s_port),
            '--ca-file', srv.ca_file, '--jid', jid(srv, user), '--password', USERS[user],
            '--timeout', '20'] + [str(a) for a in args]
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=60)
    return Run(argv, proc)


def test_roster_round_trip_with_versioning(roster_bins, server, tmp_path):
    me = fresh_account(server)
    romeo, nurse = jid(server, 'romeo-x'), jid(server, 'nurse-x')
    cache = tmp_path / 'roster.cache'

    # 1. first login: nothing cached, so ver="" (we know both servers
    #    version rosters); add a contact with a name and two groups
    r1 = run_probe(roster_bins, server, me, '--cache', cache, '--assume-versioning',
                   '--add', romeo, 'Romeo', 'Friends,Verona')
    assert r1.rc == 0, r1
    assert r1.sent_vers == ['""'], r1
    assert 'result add %s ok' % romeo in r1.lines, r1
    assert 'event added %s' % romeo in r1.lines, r1
    assert r1.items == {romeo: {'sub': 'none', 'ask': '0', 'name': 'Romeo',
                                'groups': ['Friends', 'Verona']}}, r1
    assert r1.ver not in (None, '-', ''), r1      # the server versions it
    assert cache.read_text().startswith('ver\t%s\n' % r1.ver), cache.read_text()

    # 2. reconnect with the stored version, nothing changed meanwhile: the
    #    server answers with an empty result (no full roster sent)
    r2 = run_probe(roster_bins, server, me, '--cache', cache)
    assert r2.rc == 0, r2
    assert r2.sent_vers == [r1.ver], r2
    assert 'loaded count=1 ver=%s' % r1.ver in r2.lines, r2
    assert not any(s.startswith('store full=1') for s in r2.stores), r2
    assert not any(l.startswith('event ') for l in r2.lines), r2
    assert r2.items == r1.items, r2

    # 3. another session changes the roster (no cache: it gets everything)
    r3 = run_probe(roster_bins, server, me, '--add', nurse, 'Nurse', '-',
                   '--add', romeo, 'Romeo M.', 'Friends')
    assert r3.rc == 0, r3
    # no cache, but the server advertises versioning: ver="" asks for one
    assert r3.sent_vers == ['""'], r3
    assert 'event added %s' % nurse in r3.lines and 'event updated %s' % romeo in r3.lines, r3

    # 4. reconnect with the old version: the server sends the changes only
    #    (pushes after an empty result) or the full roster; either way the
    #    events name exactly what changed and the result is the server's
    r4 = run_probe(roster_bins, server, me, '--cache', cache)
    assert r4.rc == 0, r4
    assert r4.sent_vers == [r1.ver], r4
    events = sorted(l for l in r4.lines if l.startswith('event '))
    assert events == sorted(['event added %s' % nurse, 'event updated %s' % romeo]), r4
    fresh = run_probe(roster_bins, server, me)      # the server's roster, fetched whole
    assert fresh.rc == 0, fresh
    assert r4.items == fresh.items, (r4, fresh)
    assert fresh.items[romeo]['name'] == 'Romeo M.' and fresh.items[romeo]['groups'] == ['Friends']
    assert fresh.items[nurse] == {'sub': 'none', 'ask': '0', 'name': 'Nurse', 'groups': []}
    assert r4.ver not in (None, '-', r1.ver), r4

    # 5. and once more: unchanged again, empty answer
    r5 = run_probe(roster_bins, server, me, '--cache', cache)
    assert r5.rc == 0, r5
    assert r5.sent_vers == [r4.ver], r5
    assert not any(l.startswith('event ') for l in r5.lines), r5
    assert r5.items == fresh.items, r5


def test_roster_remove(roster_bins, server, tmp_path):
    me = fresh_account(server)
    a, b = jid(server, 'keep-me'), jid(server, 'drop-me')
    cache = tmp_path / 'roster.cache'
    r1 = run_probe(roster_bins, server, me, '--cache', cache, '--assume-versioning',
                   '--add', a, 'A', 'G', '--add', b, 'B', 'G')
    assert r1.rc == 0, r1
    assert set(r1.items) == {a, b}, r1
    r2 = run_probe(roster_bins, server, me, '--remove', b)
    assert r2.rc == 0, r2
    assert 'result remove %s ok' % b in r2.lines and 'event removed %s' % b in r2.lines, r2
    assert set(r2.items) == {a}, r2
    # the cached session learns of the removal on reconnect
    r3 = run_probe(roster_bins, server, me, '--cache', cache)
    assert r3.rc == 0, r3
    assert 'event removed %s' % b in r3.lines, r3
    assert set(r3.items) == {a}, r3
    # removing what is not there: RFC 6121 §2.5.3 says item-not-found,
    # which Prosody answers; ejabberd accepts it silently (no push either)
    if server.kind == 'prosody':
        r4 = run_probe(roster_bins, server, me, '--remove', jid(server, 'never-there'))
        assert r4.rc == 1, r4
        assert 'result remove %s item-not-found' % jid(server, 'never-there') in r4.lines, r4


def test_roster_example_list_format(roster_bins, server, tmp_path):
    me = fresh_account(server)
    pw = write_password_file(tmp_path, me)
    base = [roster_bins['example']] + conn_args(server) + ['--jid', jid(server, me),
                                                            '--password-file', pw]

    def ex(*args):
        return subprocess.run(base + list(args), stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=60)

    r = ex('list')
    assert r.returncode == 0 and r.stdout == '' and r.stderr == '', r
    r = ex('add', jid(server, 'zed'), 'Zed Z')
    assert r.returncode == 0 and r.stdout == '' and r.stderr == '', r
    r = ex('add', jid(server, 'amy'))
    assert r.returncode == 0, r
    # groups come through the probe (the example adds without groups)
    p = run_probe(roster_bins, server, me, '--add', jid(server, 'grp'), 'G', 'One,Two')
    assert p.rc == 0, p
    r = ex('list')
    assert r.returncode == 0, r
    assert r.stdout == ('%s\tnone\t\t\n' % jid(server, 'amy') +
                        '%s\tnone\tG\tOne,Two\n' % jid(server, 'grp') +
                        '%s\tnone\tZed Z\t\n' % jid(server, 'zed')), r
    r = ex('remove', jid(server, 'zed'))
    assert r.returncode == 0, r
    r = ex('list')
    assert jid(server, 'zed') not in r.stdout and r.stdout.count('\n') == 2, r
    # failures: one line on stderr, non-zero exit
    r = ex('remove', jid(server, 'nobody-here'))
    if server.kind == 'prosody':   # ejabberd accepts removing what is not there
        assert r.returncode == 1 and r.stderr.startswith('roster: ') and 'item-not-found' in r.stderr, r
        assert r.stderr.count('\n') == 1, r
    else:
        assert r.returncode == 0, r
    r = ex('add', 'not a jid@@')
    assert r.returncode == 64 and r.stderr.startswith('roster: '), r
    r = ex('frobnicate')
    assert r.returncode == 64, r
    bad = write_password_file(tmp_path, me, 'wrong-password')
    r = subprocess.run(base[:-1] + [bad, 'list'], stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1 and r.stderr.startswith('roster: ') and r.stderr.count('\n') == 1, r
