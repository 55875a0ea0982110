"""Stream management (XEP-0198) against the real servers: epode-send
--count N enables it, sends N numbered messages, and exits 0 only once
the server has acknowledged every one (h counted modulo 2^32, <r/> every
5 stanzas and before going idle)."""
import re
import subprocess

import integ_util as iu
from integ_util import conn_args, jid, write_password_file


def test_count_messages_all_acknowledged(bins, server, tmp_path):
    pw = write_password_file(tmp_path, 'alice')
    argv = [bins['epode_send']] + conn_args(server) + [
        '--jid', jid(server, 'alice'), '--password-file', pw, '--verbose',
        '--count', '300', jid(server, 'bob'), 'numbered']
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr[-3000:]
    log = r.stderr
    assert "SEND <enable xmlns='urn:xmpp:sm:3' resume='true'/>" in log, log[-2000:]
    assert re.search(r"RECV <enabled [^>]*urn:xmpp:sm:3", log), log[-2000:]
    hs = [int(h) for h in re.findall(r"RECV <a [^>]*h='(\d+)'", log)]
    assert hs and max(hs) == 300, hs
    assert 'numbered #300' in log
    # the last ack is asked for before the stream is closed
    assert log.rfind("SEND <r xmlns='urn:xmpp:sm:3'/>") < log.rfind('SEND </stream:stream>')


def test_count_with_wrong_password_reports_unconfirmed(bins, server, tmp_path):
    pw = tmp_path / 'bad.pw'
    pw.write_text('wrong\n')
    r = subprocess.run([bins['epode_send']] + conn_args(server) + [
        '--jid', jid(server, 'alice'), '--password-file', str(pw),
        '--count', '3', jid(server, 'bob'), 'x'],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert r.stderr.startswith('epode-send: 3 of 3 messages not confirmed'), r.stderr


def test_count_argument_checked(bins, server):
    r = subprocess.run([bins['epode_send'], '--count', '0', '--jid', 'a@b',
                        '--password-file', '/dev/null', 'x@y', 'm'],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 64 and 'bad --count' in r.stderr
