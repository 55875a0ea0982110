"""Service discovery (XEP-0030) through real Prosody and ejabberd: disco
of the server (with the disco example and im_disco_probe), an unknown
node, and one epode client discovering another."""

import os
import subprocess

from integ_util import BUILD, USERS, conn_args, jid, read_line_starting, write_password_file

PROBE = os.path.join(BUILD, 'tests', 'integration', 'im_disco_probe')
DISCO = os.path.join(BUILD, 'examples', 'disco')


def probe_argv(srv, user, *extra):
    return [PROBE, '--server', srv.host, '--port', str(srv.c2s_port), '--ca-file', srv.ca_file,
            '--jid', jid(srv, user), '--password', USERS[user]] + [str(e) for e in extra]


def run(argv, timeout=40):
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=timeout)
    return r, 'exit %s\nstdout:\n%s\nstderr:\n%s' % (r.returncode, r.stdout, r.stderr[-3000:])


def test_disco_example_on_the_server(server, tmp_path):
    pw = write_password_file(tmp_path, 'alice')
    r, info = run([DISCO] + conn_args(server) + ['--jid', jid(server, 'alice'),
                                                 '--password-file', pw, server.domain])
    assert r.returncode == 0, info
    lines = r.stdout.splitlines()
    assert any(l.startswith('identity: server/im') for l in lines), info
    feats = [l[len('feature: '):] for l in lines if l.startswith('feature: ')]
    assert 'urn:xmpp:ping' in feats, info
    assert 'http://jabber.org/protocol/disco#info' in feats, info
    # the order the usage promises: identities, features, then items
    kinds = [l.split(':', 1)[0] for l in lines]
    assert kinds == sorted(kinds, key=['identity', 'feature', 'item'].index), info
    assert r.stderr == '', info


def test_disco_example_direct_tls_and_items(server, tmp_path):
    pw = write_password_file(tmp_path, 'alice')
    r, info = run([DISCO] + conn_args(server, direct=True) +
                  ['--jid', jid(server, 'alice'), '--password-file', pw, server.domain])
    assert r.returncode == 0, info
    assert 'feature: urn:xmpp:ping' in r.stdout.splitlines(), info


def test_disco_example_failure_is_one_line(server, tmp_path):
    pw = write_password_file(tmp_path, 'alice', 'wrong password')
    r, info = run([DISCO] + conn_args(server) + ['--jid', jid(server, 'alice'),
                                                 '--password-file', pw, server.domain])
    assert r.returncode != 0, info
    assert r.stdout == '', info
    assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith('disco: '), info


def test_disco_example_usage(tmp_path):
    r, info = run([DISCO])
    assert r.returncode == 64, info
    assert r.stderr.startswith('disco: '), info


def test_disco_unknown_node_reports_condition(server):
    r, info = run(probe_argv(server, 'alice', '--query', server.domain,
                             '--node', 'no-such-node-here'))
    lines = r.stdout.splitlines()
    errs = [l for l in lines if l.startswith('query-error ')]
    assert errs, info
    assert errs[0].split()[1] in ('item-not-found', 'service-unavailable',
                                  'feature-not-implemented'), info


def test_disco_of_an_epode_client_by_another(server, spawn):
    """bob (an epode client with an extra feature) stays online; alice asks
    bob's full JID; the answer is what bob registered, and an unknown node
    of bob's gives item-not-found."""
    bob = spawn.popen(probe_argv(server, 'bob', '--feature', 'urn:example:epode-probe',
                                 '--linger', 20))
    lines = read_line_starting(bob, 'ready ')
    bob_jid = [l for l in lines if l.startswith('ready ')][0].split()[1]
    r, info = run(probe_argv(server, 'alice', '--query', bob_jid))
    assert r.returncode == 0, info
    lines = r.stdout.splitlines()
    assert 'identity: client/bot im_disco_probe' in lines, info
    for f in ('urn:example:epode-probe', 'http://jabber.org/protocol/caps',
              'http://jabber.org/protocol/disco#info', 'http://jabber.org/protocol/disco#items'):
        assert 'feature: %s' % f in lines, info
    assert 'query-done' in lines, info
    r, info = run(probe_argv(server, 'alice', '--query', bob_jid, '--node', 'nope'))
    assert 'query-error item-not-found' in r.stdout.splitlines(), info
    bob.kill()
