"""Issue 11 item 3: a stream error is reported as what it is. A server
that ends the stream with <system-shutdown/> right after the bind result
(while epode-send waits for its ping to be answered) must make the tool
say so: its one line names the condition and the server's text, not
"no confirmation from the server: canceled". The server is a small
scripted one over direct TLS (the suite's own certificate for
localhost), so the error comes exactly at that point."""
import re
import socket
import ssl
import subprocess
import threading

import integ_util as iu

HDR = ("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
       "xmlns:stream='http://etherx.jabber.org/streams' from='localhost' id='s1' version='1.0'>")


def _serve(lsock, ctx, log):
    conn, _ = lsock.accept()
    conn.settimeout(10)
    with ctx.wrap_socket(conn, server_side=True) as s:
        buf = b''

        def wait_for(pattern):
            nonlocal buf
            while not re.search(pattern, buf):
                chunk = s.recv(65536)
                if not chunk:
                    raise EOFError(pattern)
                buf += chunk
            buf = b''

        wait_for(rb'<stream:stream')
        s.sendall((HDR + "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
                   "<mechanism>PLAIN</mechanism></mechanisms></stream:features>").encode())
        wait_for(rb'</auth>')
        s.sendall(b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
        wait_for(rb'<stream:stream')
        s.sendall((HDR + "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
                   "</stream:features>").encode())
        wait_for(rb'bind_1')
        s.sendall(b"<iq type='result' id='bind_1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                  b"<jid>alice@localhost/r</jid></bind></iq>")
        wait_for(rb'urn:xmpp:ping')  # the message went out, then the ping
        s.sendall(b"<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                  b"<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>maintenance at noon</text>"
                  b"</stream:error></stream:stream>")
        log.append('sent')
        try:
            while s.recv(4096):
                pass
        except (OSError, ssl.SSLError):
            pass


def test_epode_send_names_the_stream_error(bins, pki, tmp_path):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*pki.server_pair('good'))
    lsock = socket.socket()
    lsock.bind(('127.0.0.1', 0))
    lsock.listen(1)
    log = []
    t = threading.Thread(target=_serve, args=(lsock, ctx, log), daemon=True)
    t.start()
    pw = tmp_path / 'pw'
    pw.write_text('secret\n')
    r = subprocess.run([bins['epode_send'], '--server', '127.0.0.1',
                        '--port', str(lsock.getsockname()[1]), '--direct-tls',
                        '--ca-file', pki.ca_cert, '--jid', 'alice@localhost',
                        '--password-file', str(pw), 'bob@localhost', 'hello'],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    t.join(10)
    lsock.close()
    assert log == ['sent'], (log, r.stderr)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert 'system-shutdown' in lines[0] and 'maintenance at noon' in lines[0], lines[0]
    assert 'canceled' not in lines[0], lines[0]
