"""examples/poll-loop: epode driven by the application's own poll(2) loop
through the external-loop API (watch and timer callbacks, then
epode_ctx_process) logs in, sends, gets the server's ping answer and
closes cleanly — over STARTTLS and direct TLS, on both servers."""
import subprocess

import integ_util as iu
from integ_util import conn_args, jid, write_password_file


def poll_loop(bins, server, tmp_path, *extra, direct=False, user='alice'):
    exe = iu._binary('examples', 'poll-loop')
    pw = write_password_file(tmp_path, user)
    return subprocess.run([exe] + conn_args(server, direct) + list(extra) + [
        '--jid', jid(server, user), '--password-file', pw, jid(server, 'bob'), 'via poll'],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)


def test_poll_loop_logs_in_and_sends(bins, server, tmp_path):
    for direct in (False, True):
        r = poll_loop(bins, server, tmp_path, direct=direct)
        assert r.returncode == 0, (direct, r.stderr)
        assert r.stdout == '' and r.stderr == ''


def test_poll_loop_reports_failure(bins, server, tmp_path):
    pw = tmp_path / 'bad.pw'
    pw.write_text('nope\n')
    exe = iu._binary('examples', 'poll-loop')
    r = subprocess.run([exe] + conn_args(server) + [
        '--jid', jid(server, 'alice'), '--password-file', str(pw), jid(server, 'bob'), 'x'],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert r.stderr.startswith('poll-loop: authentication failed'), r.stderr


def test_poll_loop_verbose_shows_traffic(bins, server, tmp_path):
    r = poll_loop(bins, server, tmp_path, '--verbose')
    assert r.returncode == 0, r.stderr
    assert 'SEND <message type="chat"' in r.stderr
    assert '[redacted]' in r.stderr and 'alice-secret' not in r.stderr
