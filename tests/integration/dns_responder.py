"""A tiny DNS responder for tests: UDP on 127.0.0.1, a random port, answers
SRV, A and AAAA questions from a table the test sets, NXDOMAIN otherwise.
It lets epode's SRV path (c-ares, RFC 6120 §3.2 ordering, XEP-0368) run end
to end without a packet leaving loopback."""
import socket
import struct
import threading

TYPE_A, TYPE_AAAA, TYPE_SRV = 1, 28, 33


def _name(labels):
    out = b''
    for label in labels.rstrip('.').split('.'):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b'\0'


def _read_name(msg, off):
    labels = []
    while msg[off] != 0:
        n = msg[off]
        labels.append(msg[off + 1:off + 1 + n].decode('ascii', 'replace'))
        off += 1 + n
    return '.'.join(labels).lower(), off + 1


class DnsResponder:
    """records: {(name, type): [rdata values]} where a SRV value is
    (priority, weight, port, target) and A/AAAA values are address strings."""

    def __init__(self, records):
        self.records = {(k[0].lower().rstrip('.'), k[1]): v for k, v in records.items()}
        self.queries = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(('127.0.0.1', 0))
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(0.2)
        self._stop = False
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    @property
    def address(self):
        return '127.0.0.1:%d' % self.port

    def _answer(self, q):
        ident, flags, qd = struct.unpack('!HHH', q[:6])
        name, off = _read_name(q, 12)
        qtype, qclass = struct.unpack('!HH', q[off:off + 4])
        question = q[12:off + 4]
        self.queries.append((name, qtype))
        values = self.records.get((name, qtype))
        known = any(k[0] == name for k in self.records)
        rcode = 0 if values is not None or known else 3  # NXDOMAIN
        answers = b''
        for v in values or []:
            if qtype == TYPE_SRV:
                pri, weight, port, target = v
                rdata = struct.pack('!HHH', pri, weight, port) + _name(target)
            elif qtype == TYPE_A:
                rdata = socket.inet_pton(socket.AF_INET, v)
            else:
                rdata = socket.inet_pton(socket.AF_INET6, v)
            answers += b'\xc0\x0c' + struct.pack('!HHIH', qtype, 1, 60, len(rdata)) + rdata
        n = len(values or [])
        header = struct.pack('!HHHHHH', ident, 0x8180 | rcode, 1, n, 0, 0)
        return header + question + answers

    def _run(self):
        while not self._stop:
            try:
                q, addr = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                self.sock.sendto(self._answer(q), addr)
            except Exception:  # a malformed question: stay silent
                pass

    def close(self):
        self._stop = True
        self._t.join(2)
        self.sock.close()
