"""Presence and subscriptions through real servers (Prosody and ejabberd):
the subscription handshake between two epode clients, presence tracking
of two resources of one account as a third account sees it (best
resource, changes, one resource leaving), auto-accept, and the
presence-watch example. Each test registers fresh accounts, so rosters
left by other tests do not matter."""

import os
import signal
import subprocess
import time
import uuid

import pytest

import integ_util as iu
from integ_util import USERS, conn_args, jid, write_password_file

HERE = os.path.dirname(os.path.abspath(__file__))


def fresh(srv, *prefixes):
    out = []
    for p in prefixes:
        name = '%s-%s' % (p, uuid.uuid4().hex[:8])
        pw = 'pw-%s' % uuid.uuid4().hex[:12]
        srv.register(name, pw)
        USERS[name] = pw
        out.append(name)
    return out


class Probe:
    """A running im_presence_probe (or im_message_probe): send commands,
    wait for output lines."""

    def __init__(self, spawn, binary, srv, user, resource=None, extra=()):
        j = jid(srv, user) + ('/' + resource if resource else '')
        argv = [binary] + conn_args(srv) + ['--jid', j, '--password', USERS[user],
                                            '--timeout', '60'] + list(extra)
        self.proc = spawn.popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=False)
        self.lines = []
        self.buf = b''
        self.full = self.wait('ready ').split(' ', 1)[1]

    def cmd(self, line):
        self.proc.stdin.write((line + '\n').encode())
        self.proc.stdin.flush()

    def _read(self, timeout):
        import select
        r, _, _ = select.select([self.proc.stdout.fileno()], [], [], timeout)
        if not r:
            return False
        chunk = os.read(self.proc.stdout.fileno(), 65536)
        if not chunk:
            return None
        self.buf += chunk
        *done, self.buf = self.buf.split(b'\n')
        self.lines += [d.decode('utf-8', 'replace') for d in done]
        return True

    def wait(self, prefix, timeout=15, start=0):
        """The first line (from index `start` of everything read) starting
        with prefix."""
        deadline = time.monotonic() + timeout
        while True:
            for l in self.lines[start:]:
                if l.startswith(prefix):
                    return l
            left = deadline - time.monotonic()
            if left <= 0 or self._read(left) is None:
                raise AssertionError('no %r within %ss; got:\n%s\nstderr: %s' % (
                    prefix, timeout, '\n'.join(self.lines), self._stderr()))

    def mark(self):
        return len(self.lines)

    def ask(self, line, prefix, timeout=10):
        m = self.mark()
        self.cmd(line)
        return self.wait(prefix, timeout, start=m)

    def _stderr(self):
        return ''

    def quit(self):
        self.cmd('quit')
        self.wait('disconnected ', 15)
        assert self.proc.wait(10) == 0, '\n'.join(self.lines)
        return [l for l in self.lines]


@pytest.fixture(scope='session')
def pbin():
    return iu._binary('tests', 'integration', 'im_presence_probe')


def test_subscription_handshake_between_two_epode_clients(server, spawn, pbin):
    a, b = fresh(server, 'sa', 'sb')
    A = Probe(spawn, pbin, server, a)
    B = Probe(spawn, pbin, server, b)
    A.cmd('subscribe %s' % jid(server, b))
    B.wait('sub request %s' % jid(server, a))
    # B approves and asks back
    B.cmd('approve %s' % jid(server, a))
    # the contact's server sends B's presence once approved (RFC 6121 §3.1.5)
    A.wait('avail %s ' % B.full)
    B.cmd('subscribe %s' % jid(server, a))
    A.wait('sub request %s' % jid(server, b))
    A.cmd('approve %s' % jid(server, b))
    B.wait('avail %s ' % A.full)
    # presence changes now flow both ways
    m = B.mark()
    A.cmd('presence away 3 at lunch')
    assert B.wait('changed %s' % A.full, start=m) == 'changed %s away 3 at lunch' % A.full
    m = A.mark()
    B.cmd('presence dnd 0')
    assert A.wait('changed %s' % B.full, start=m) == 'changed %s dnd 0' % B.full
    # and leaving is seen
    m = B.mark()
    A.quit()
    B.wait('unavail %s' % A.full, start=m)
    assert B.ask('count %s' % jid(server, a), 'count ') == 'count %s 0' % jid(server, a)
    B.quit()


def test_presence_tracking_across_two_resources(server, spawn, pbin):
    watcher, multi = fresh(server, 'pw', 'pm')
    M1 = Probe(spawn, pbin, server, multi, 'one', ['--priority', '1', '--auto-accept', 'on'])
    W = Probe(spawn, pbin, server, watcher)
    W.cmd('subscribe %s' % jid(server, multi))
    M1.wait('sub request %s' % jid(server, watcher))   # auto-accepted by the tracker
    W.wait('avail %s/one available 1' % jid(server, multi))
    M2 = Probe(spawn, pbin, server, multi, 'two', ['--priority', '5', '--show', 'away'])
    W.wait('avail %s/two away 5' % jid(server, multi))
    bare = jid(server, multi)
    assert W.ask('count %s' % bare, 'count ') == 'count %s 2' % bare
    assert W.ask('best %s' % bare, 'best ') == 'best %s %s/two' % (bare, bare)
    # the second resource drops below the first
    m = W.mark()
    M2.cmd('presence dnd -1 busy')
    assert W.wait('changed %s/two' % bare, start=m) == 'changed %s/two dnd -1 busy' % bare
    assert W.ask('best %s' % bare, 'best ') == 'best %s %s/one' % (bare, bare)
    # the first leaves: the second is best and alone
    m = W.mark()
    M1.quit()
    W.wait('unavail %s/one' % bare, start=m)
    assert W.ask('count %s' % bare, 'count ') == 'count %s 1' % bare
    assert W.ask('best %s' % bare, 'best ') == 'best %s %s/two' % (bare, bare)
    # the two resources of one account also see each other (RFC 6121 §4.2.2)
    M2.wait('avail %s/one' % bare)
    M2.wait('unavail %s/one' % bare)
    m = W.mark()
    M2.quit()
    W.wait('unavail %s/two' % bare, start=m)
    assert W.ask('best %s' % bare, 'best ') == 'best %s none' % bare
    W.quit()


def test_denied_subscription_reveals_nothing(server, spawn, pbin):
    a, b = fresh(server, 'da', 'db')
    A = Probe(spawn, pbin, server, a)
    B = Probe(spawn, pbin, server, b)
    A.cmd('subscribe %s' % jid(server, b))
    B.wait('sub request %s' % jid(server, a))
    B.cmd('deny %s' % jid(server, a))
    # servers tell the requester through a roster push, and not all of
    # them deliver the 'unsubscribed' itself: only check nothing leaks
    time.sleep(1.0)
    m = A.mark()
    B.cmd('presence chat 2 hello')
    time.sleep(1.0)
    assert A.ask('count %s' % jid(server, b), 'count ') == 'count %s 0' % jid(server, b)
    assert not [l for l in A.lines[m:] if l.split(' ')[0] in ('avail', 'changed') and
                l.split(' ')[1].startswith(jid(server, b))], A.lines
    A.quit()
    B.quit()


def test_presence_watch_example_prints_changes(server, spawn, pbin, tmp_path):
    watch_bin = iu._binary('examples', 'presence-watch')
    w, c = fresh(server, 'ww', 'wc')
    C = Probe(spawn, pbin, server, c, 'desk', ['--auto-accept', 'on'])
    pw = write_password_file(tmp_path, w)
    argv = [watch_bin] + conn_args(server) + ['--jid', jid(server, w) + '/watch',
                                              '--password-file', pw, 'away', 'watching']
    p = spawn.popen(argv)
    # the example sees its own presence first
    line = iu.read_line_starting(p, '%s/watch away watching' % jid(server, w), 15)
    # subscribe to C with a probe of the same account, then watch C change
    W2 = Probe(spawn, pbin, server, w, 'helper')
    W2.cmd('subscribe %s' % jid(server, c))
    iu.read_line_starting(p, '%s/desk available' % jid(server, c), 15)
    C.cmd('presence xa 0 gone home')
    iu.read_line_starting(p, '%s/desk xa gone home' % jid(server, c), 15)
    C.quit()
    iu.read_line_starting(p, '%s/desk unavailable' % jid(server, c), 15)
    W2.quit()
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=15)
    assert p.returncode == 0, (out, err)
    assert line


def test_presence_watch_example_fails_with_a_reason(server, spawn, tmp_path):
    watch_bin = iu._binary('examples', 'presence-watch')
    pw = write_password_file(tmp_path, 'alice', 'wrong-password')
    r = subprocess.run([watch_bin] + conn_args(server) + ['--jid', jid(server, 'alice'),
                                                          '--password-file', pw],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1, r
    assert r.stderr.startswith('presence-watch: ') and r.stderr.count('\n') == 1, r.stderr
    r = subprocess.run([watch_bin] + conn_args(server) + ['--jid', jid(server, 'alice'),
                                                          '--password-file', pw, 'sleepy'],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 64, r
