"""examples/tunnel: a connection over an application's own transport (a
socketpair the example owns, relayed to the server by a thread of its
own), against real Prosody and ejabberd, with STARTTLS and direct TLS:
READY, a message to itself comes back, a clean close. And epode's own
certificate check still applies over the application's pipe."""
import subprocess

import pytest

import integ_util as iu


def run_tunnel(srv, tmp_path, *args, port=None, direct=False, system_store=False):
    pw = tmp_path / 'pw'
    pw.write_text(iu.USERS['alice'] + '\n')
    port = port or (srv.direct_tls_port if direct else srv.c2s_port)
    argv = [iu._binary('examples', 'tunnel'), '--relay-to', '127.0.0.1:%d' % port,
            '--jid', 'alice@' + srv.domain,
            '--password-file', str(pw), '--timeout', '15'] + list(args)
    if not system_store:
        argv += ['--ca-file', srv.ca_file]
    if direct:
        argv.append('--direct-tls')
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=40)


@pytest.mark.parametrize('direct', [False, True], ids=['starttls', 'direct-tls'])
def test_tunnel_logs_in_and_echoes(server, tmp_path, direct):
    r = run_tunnel(server, tmp_path, direct=direct)
    assert r.returncode == 0, (r.stdout, r.stderr)
    lines = r.stdout.splitlines()
    assert lines[0].startswith('ready alice@%s/' % server.domain), lines
    assert lines[1].startswith('security TLS 1.3 (%s)' % ('direct' if direct else 'STARTTLS')), lines
    assert lines[2] == 'echo ok', lines


def test_tunnel_still_checks_the_certificate(server, tmp_path):
    """The pipe is the application's, the trust decision epode's: with the
    system store the test CA is unknown and the login is refused."""
    r = run_tunnel(server, tmp_path, system_store=True)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert 'ready' not in r.stdout
    assert 'certificate' in r.stderr, r.stderr
