#!/usr/bin/python3
"""A fault-injecting TCP proxy for loopback tests (stdlib only).

    p = FaultProxy('127.0.0.1', server.c2s_port, seed=1)
    ... connect clients to 127.0.0.1:p.port ...
    p.cut_all(); p.cut_after(200, 'down'); p.stall(1.0, 'up'); p.delay(50)
    p.random_cuts(2.0, jitter=0.5); p.refuse(1)
    p.close()

Each accepted client connection gets its own upstream connection to the
target; bytes are forwarded unchanged both ways. Directions: 'up' is
client -> target, 'down' is target -> client.

Everything runs in ONE background thread (a selectors loop); the public
methods hand their work to it and wait until it is done, so after
`cut_all()` returns the sockets are already reset. `close()` stops the
loop, resets every open connection and joins the thread.

Faults:
  cut_all()                   reset (RST: SO_LINGER 0) every open pair now;
                              returns how many were cut.
  cut_after(n, direction)     one-shot: the first connection (open now or
                              future) that forwards n more bytes in that
                              direction gets exactly n forwarded, then is cut.
  stall(seconds, direction)   forward nothing in that direction (on every
                              connection) for a while; nothing is closed.
                              direction 'up', 'down' or 'both'.
  delay(ms, direction)        each chunk read is held ms before it is
                              forwarded (order kept); 0 turns it off.
  random_cuts(mean, jitter)   every mean*(1 +- jitter) seconds cut one
                              random open connection (seeded by `seed`);
                              mean None/0 stops it.
  refuse(n)                   the next n connection attempts are accepted
                              and reset at once (not counted in .connections).
  cut_every(lo, hi, direction, mode, stall_s)
                              on every connection, again and again: after a
                              seeded random number of bytes in [lo, hi]
                              forwarded in `direction` ('up', 'down' or
                              'both', counted together), exactly that many,
                              fault the connection: mode 'rst' (reset both
                              sides), 'fin' (close both sides cleanly, what
                              was not forwarded yet is dropped) or 'stall'
                              (forward nothing either way on it for stall_s
                              seconds, then go on with a new budget). Each
                              fault counts in .cuts (stalls in .stalls too).
                              Between the last byte and an rst or fin the
                              pair forwards nothing for `grace` seconds
                              (default 0.05), so the peers read what they
                              got before the reset discards it: each side
                              has seen exactly a prefix of the stream.
                              lo None stops it.

Counters (read at any time): .connections (accepted and forwarded),
.refused, .cuts (connections cut by the proxy: cut_all, cut_after,
random_cuts), .bytes_up / .bytes_down (bytes forwarded), .active (open
pairs), .errors (unexpected exceptions, should stay empty);
`counters()` returns them as a dict.

A peer's EOF is passed on as a half-close (shutdown SHUT_WR) once what
was read from it has been forwarded; a pair is closed when both sides
are done. A peer's reset (or a failed write) resets the other side too.
A failed upstream connect resets the client.

CLI:
  faultproxy.py --target HOST:PORT [--random-cuts SECONDS] [--seed N]
prints {"port": N} (one JSON line), runs until stdin reaches EOF or
SIGTERM/SIGINT arrives, then prints the final counters as one JSON line
and exits 0.
"""

import argparse
import collections
import errno
import json
import os
import random
import select
import selectors
import signal
import socket
import struct
import sys
import threading
import time

DIRS = ('up', 'down')
READ_SIZE = 65536
BUF_LIMIT = 1 << 20          # per direction: stop reading beyond this
MAX_WAIT = 0.2               # the loop wakes at least this often
CONNECT_TIMEOUT = 10.0       # upstream connect


def _dirs(direction):
    if direction == 'both':
        return DIRS
    if direction not in DIRS:
        raise ValueError("direction must be 'up', 'down' or 'both': %r" % (direction,))
    return (direction,)


def _reset(sock):
    """Closes sock abruptly (RST)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class _Dir:
    """One direction of a pair: read from src, write to dst."""

    def __init__(self, name, src, dst):
        self.name = name
        self.src = src
        self.dst = dst
        self.chunks = collections.deque()  # [release_time, bytes]
        self.buffered = 0
        self.eof = False        # src said EOF
        self.shut = False       # passed the EOF on to dst
        self.forwarded = 0


class _Pair:
    def __init__(self, pid, client, upstream):
        self.id = pid
        self.client = client
        self.upstream = upstream
        self.connected = False
        self.connect_deadline = time.monotonic() + CONNECT_TIMEOUT
        self.dirs = {'up': _Dir('up', client, upstream), 'down': _Dir('down', upstream, client)}
        self.closed = False
        self.masks = {}
        self.budget = None          # cut_every: bytes left before the next fault
        self.counted = 0
        self.stalled_until = 0.0
        self.fault = None           # cut_every: 'rst'/'fin' due at stalled_until


class FaultProxy:
    def __init__(self, target_host, target_port, seed=None, listen_host='127.0.0.1',
                 listen_port=0):
        infos = socket.getaddrinfo(target_host, int(target_port), type=socket.SOCK_STREAM)
        self._target_family, _, _, _, self._target_addr = infos[0]
        self.target = (target_host, int(target_port))
        self._rng = random.Random(seed)
        self.connections = 0
        self.refused = 0
        self.cuts = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self.errors = []
        self._pairs = {}
        self._next_id = 0
        self._refuse = 0
        self._cut_rule = None       # (direction, n, {pair id: forwarded at arm time})
        self._every = None          # (lo, hi, dirs, mode, stall_s)
        self.stalls = 0
        self._stall_until = {'up': 0.0, 'down': 0.0}
        self._delay = {'up': 0.0, 'down': 0.0}
        self._random = None         # (mean, jitter)
        self._next_random = None
        self._stopping = False
        self._cmds = collections.deque()
        self._cmd_lock = threading.Lock()

        self._sel = selectors.DefaultSelector()
        self._lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._lsock.bind((listen_host, listen_port))
        self._lsock.listen(128)
        self._lsock.setblocking(False)
        self.port = self._lsock.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel.register(self._lsock, selectors.EVENT_READ, ('listen', None))
        self._sel.register(self._wake_r, selectors.EVENT_READ, ('wake', None))
        self._thread = threading.Thread(target=self._run, name='faultproxy:%d' % self.port,
                                        daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------
    # public API (any thread)
    # ------------------------------------------------------------------

    @property
    def active(self):
        return len(self._pairs)

    def counters(self):
        return {'port': self.port, 'connections': self.connections, 'refused': self.refused,
                'cuts': self.cuts, 'stalls': self.stalls, 'bytes_up': self.bytes_up, 'bytes_down': self.bytes_down,
                'active': self.active, 'errors': len(self.errors)}

    def cut_all(self):
        """Resets every open client+upstream pair; returns how many."""
        def do():
            n = 0
            for pair in list(self._pairs.values()):
                self._cut(pair)
                n += 1
            return n
        return self._call(do)

    def cut_after(self, n_bytes, direction='down'):
        """One-shot: cut the first connection that forwards n_bytes more in
        `direction` ('up' or 'down'), exactly after those bytes."""
        if direction not in DIRS:
            raise ValueError("direction must be 'up' or 'down'")
        n_bytes = int(n_bytes)
        if n_bytes < 0:
            raise ValueError('n_bytes must be >= 0')

        def do():
            base = {pid: p.dirs[direction].forwarded for pid, p in self._pairs.items()}
            self._cut_rule = (direction, n_bytes, base)
            if n_bytes == 0:
                for pair in list(self._pairs.values()):
                    if pair.connected:
                        self._cut_rule = None
                        self._cut(pair)
                        break
        self._call(do)

    def cut_every(self, lo, hi=None, direction='both', mode='rst', stall_s=2.0, grace=0.05):
        """Faults every connection after each [lo, hi] bytes (see above)."""
        if lo is None:
            def stop():
                self._every = None
            return self._call(stop)
        hi = lo if hi is None else hi
        if not 0 < int(lo) <= int(hi):
            raise ValueError('need 0 < lo <= hi')
        if mode not in ('rst', 'fin', 'stall'):
            raise ValueError("mode must be 'rst', 'fin' or 'stall'")
        rule = (int(lo), int(hi), _dirs(direction), mode, float(stall_s), float(grace))

        def do():
            self._every = rule
            for pair in self._pairs.values():
                self._new_budget(pair)
        self._call(do)

    def _new_budget(self, pair):
        if self._every:
            pair.budget = self._rng.randint(self._every[0], self._every[1])
            pair.counted = 0

    def _every_fault(self, pair, now):
        """The byte budget of pair is spent: apply the rule's fault."""
        mode, stall_s, grace = self._every[3], self._every[4], self._every[5]
        self.cuts += 1
        if mode != 'stall' and grace > 0 and pair.fault is None:
            pair.fault = mode
            pair.stalled_until = now + grace
            return
        pair.fault = None
        if mode == 'rst':
            self._close_pair(pair, abort=True)
        elif mode == 'fin':
            for sock in (pair.client, pair.upstream):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._close_pair(pair, abort=False)
        else:
            self.stalls += 1
            pair.stalled_until = now + stall_s
            self._new_budget(pair)

    def stall(self, seconds, direction='both'):
        """Forwards nothing in `direction` for `seconds` (0 ends a stall)."""
        dirs = _dirs(direction)

        def do():
            until = time.monotonic() + max(0.0, float(seconds))
            for d in dirs:
                self._stall_until[d] = until
        self._call(do)

    def delay(self, ms, direction='both'):
        """Holds each chunk `ms` milliseconds before forwarding it."""
        dirs = _dirs(direction)

        def do():
            for d in dirs:
                self._delay[d] = max(0.0, float(ms)) / 1000.0
        self._call(do)

    def random_cuts(self, mean_interval_s, jitter=0.5):
        """Cuts one random open connection every mean*(1 +- jitter) s;
        mean None or 0 stops it."""
        def do():
            if not mean_interval_s:
                self._random = self._next_random = None
                return
            j = min(max(float(jitter), 0.0), 1.0)
            self._random = (float(mean_interval_s), j)
            self._schedule_random(time.monotonic())
        self._call(do)

    def refuse(self, n=1):
        """Resets the next n connection attempts as soon as they arrive."""
        def do():
            self._refuse = max(0, int(n))
        self._call(do)

    def close(self, timeout=10.0):
        """Stops the loop, resets open connections, joins the thread."""
        if not self._thread.is_alive():
            self._cleanup()
            return
        self._stopping = True
        self._wake()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError('faultproxy thread did not stop')

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------
    # plumbing
    # ------------------------------------------------------------------

    def _wake(self):
        try:
            self._wake_w.send(b'x')
        except (BlockingIOError, OSError):
            pass

    def _call(self, fn, timeout=10.0):
        if threading.current_thread() is self._thread:
            return fn()
        if not self._thread.is_alive():
            raise RuntimeError('faultproxy is closed')
        done = threading.Event()
        box = {}

        def wrapped():
            try:
                box['r'] = fn()
            except BaseException as e:  # noqa: BLE001 - re-raised in the caller
                box['e'] = e
            finally:
                done.set()
        with self._cmd_lock:
            self._cmds.append(wrapped)
        self._wake()
        if not done.wait(timeout):
            raise RuntimeError('faultproxy loop did not answer')
        if 'e' in box:
            raise box['e']
        return box.get('r')

    def _schedule_random(self, now):
        mean, j = self._random
        self._next_random = now + max(0.001, mean * (1.0 + self._rng.uniform(-j, j)))

    def _run(self):
        try:
            while not self._stopping:
                self._iterate()
        except BaseException as e:  # noqa: BLE001 - kept for the tests
            self.errors.append(repr(e))
        finally:
            self._cleanup()

    def _cleanup(self):
        for pair in list(self._pairs.values()):
            self._close_pair(pair, abort=True)
        for s in (self._lsock, self._wake_r, self._wake_w):
            try:
                self._sel.unregister(s)
            except (KeyError, ValueError, OSError):
                pass
            try:
                s.close()
            except OSError:
                pass
        try:
            self._sel.close()
        except OSError:
            pass
        # wake any caller still waiting in _call
        with self._cmd_lock:
            cmds, self._cmds = list(self._cmds), collections.deque()
        for c in cmds:
            c()

    def _iterate(self):
        now = time.monotonic()
        wait = MAX_WAIT
        for pair in self._pairs.values():
            w = self._update_interest(pair, now)
            if w is not None:
                wait = min(wait, w)
        if self._next_random is not None:
            wait = min(wait, self._next_random - now)
        for d in DIRS:
            if self._stall_until[d] > now:
                wait = min(wait, self._stall_until[d] - now)
        for key, mask in self._sel.select(max(0.0, wait)):
            kind, pair = key.data
            if kind == 'listen':
                self._accept()
            elif kind == 'wake':
                try:
                    while self._wake_r.recv(4096):
                        pass
                except (BlockingIOError, OSError):
                    pass
            elif not pair.closed:
                try:
                    self._on_ready(pair, key.fileobj, mask)
                except Exception as e:  # noqa: BLE001 - never kill the loop for one pair
                    self.errors.append('pair %d: %r' % (pair.id, e))
                    self._close_pair(pair, abort=True)
        while True:
            with self._cmd_lock:
                if not self._cmds:
                    break
                cmd = self._cmds.popleft()
            cmd()
        now = time.monotonic()
        if self._next_random is not None and now >= self._next_random:
            live = [p for p in self._pairs.values() if p.connected]
            if live:
                self._cut(self._rng.choice(live))
            self._schedule_random(now)
        for pair in list(self._pairs.values()):
            if pair.fault is not None and now >= pair.stalled_until:
                self.cuts -= 1      # counted when the budget was spent
                self._every_fault(pair, now)
                continue
            if not pair.connected and now > pair.connect_deadline:
                self._close_pair(pair, abort=True)
            elif not pair.closed:
                self._flush(pair, now)

    # --- sockets -------------------------------------------------------

    def _accept(self):
        for _ in range(64):     # bounded: others wait for the next turn
            try:
                conn, _ = self._lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self.errors.append('accept: %r' % e)
                return
            if self._stopping or self._refuse > 0:
                if self._refuse > 0:
                    self._refuse -= 1
                    self.refused += 1
                _reset(conn)
                continue
            conn.setblocking(False)
            up = socket.socket(self._target_family, socket.SOCK_STREAM)
            up.setblocking(False)
            for s in (conn, up):
                try:
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                except OSError:
                    pass
            self.connections += 1
            self._next_id += 1
            pair = _Pair(self._next_id, conn, up)
            self._pairs[pair.id] = pair
            self._new_budget(pair)
            err = up.connect_ex(self._target_addr)
            if err == 0:
                pair.connected = True
            elif err not in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
                self._close_pair(pair, abort=True)
                continue
            pair.masks = {conn: 0, up: 0}

    def _update_interest(self, pair, now):
        """Sets the selector masks for pair; returns how long until a
        delayed chunk becomes due (or None)."""
        if pair.closed:
            return None
        want = {pair.client: 0, pair.upstream: 0}
        due = None
        if not pair.connected:
            want[pair.upstream] |= selectors.EVENT_WRITE
            due = max(0.0, pair.connect_deadline - now)
        if pair.stalled_until > now:
            due = pair.stalled_until - now if due is None else min(due, pair.stalled_until - now)
        for d in pair.dirs.values():
            stalled = self._stall_until[d.name] > now or pair.stalled_until > now
            if not d.eof and not stalled and d.buffered < BUF_LIMIT and \
                    (pair.connected or d.name == 'up'):
                want[d.src] |= selectors.EVENT_READ
            if pair.connected and not stalled and d.chunks:
                t = d.chunks[0][0]
                if t <= now:
                    want[d.dst] |= selectors.EVENT_WRITE
                else:
                    due = t - now if due is None else min(due, t - now)
        for s, m in want.items():
            old = pair.masks.get(s, 0)
            if m == old:
                continue
            if old == 0:
                self._sel.register(s, m, ('pair', pair))
            elif m == 0:
                self._sel.unregister(s)
            else:
                self._sel.modify(s, m, ('pair', pair))
            pair.masks[s] = m
        return due

    def _on_ready(self, pair, sock, mask):
        now = time.monotonic()
        if sock is pair.upstream and not pair.connected:
            if mask & selectors.EVENT_WRITE:
                err = pair.upstream.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    self._close_pair(pair, abort=True)
                    return
                pair.connected = True
            if sock is pair.upstream and not (mask & selectors.EVENT_READ):
                return
        if mask & selectors.EVENT_READ:
            d = pair.dirs['up'] if sock is pair.client else pair.dirs['down']
            if not self._read(pair, d, now):
                return
        if mask & selectors.EVENT_WRITE and pair.connected:
            self._flush(pair, now)

    def _read(self, pair, d, now):
        try:
            data = d.src.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            # the peer reset (or worse): reset the other side too
            self._close_pair(pair, abort=True)
            return False
        if not data:
            d.eof = True
            self._maybe_shut(pair, d)
            return not pair.closed
        d.chunks.append([now + self._delay[d.name], data])
        d.buffered += len(data)
        return True

    def _flush(self, pair, now):
        for d in pair.dirs.values():
            if pair.closed:
                return
            if self._stall_until[d.name] > now or pair.stalled_until > now:
                continue
            while d.chunks and d.chunks[0][0] <= now and not pair.closed:
                chunk = d.chunks[0][1]
                limit = len(chunk)
                every = self._every if self._every and d.name in self._every[2] else None
                if every is not None:
                    if pair.budget is None:
                        self._new_budget(pair)
                    limit = min(limit, max(1, pair.budget - pair.counted))
                rule = self._cut_rule
                if rule is not None and rule[0] == d.name:
                    left = rule[1] - (d.forwarded - rule[2].get(pair.id, 0))
                    if left <= 0:
                        self._cut_rule = None
                        self._cut(pair)
                        return
                    limit = min(limit, left)
                try:
                    sent = d.dst.send(chunk[:limit])
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    self._close_pair(pair, abort=True)
                    return
                d.forwarded += sent
                d.buffered -= sent
                if d.name == 'up':
                    self.bytes_up += sent
                else:
                    self.bytes_down += sent
                if sent < len(chunk):
                    d.chunks[0][1] = chunk[sent:]
                else:
                    d.chunks.popleft()
                if every is not None:
                    pair.counted += sent
                    if pair.counted >= pair.budget:
                        self._every_fault(pair, now)
                        if pair.closed or pair.stalled_until > now:
                            return
                if rule is not None and rule is self._cut_rule and rule[0] == d.name and \
                        d.forwarded - rule[2].get(pair.id, 0) >= rule[1]:
                    self._cut_rule = None
                    self._cut(pair)
                    return
                if sent < limit:
                    break
            self._maybe_shut(pair, d)

    def _maybe_shut(self, pair, d):
        if d.eof and not d.chunks and not d.shut and pair.connected:
            d.shut = True
            try:
                d.dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        if all(x.shut for x in pair.dirs.values()):
            self._close_pair(pair, abort=False)

    def _cut(self, pair):
        if pair.closed:
            return
        self.cuts += 1
        self._close_pair(pair, abort=True)

    def _close_pair(self, pair, abort):
        if pair.closed:
            return
        pair.closed = True
        self._pairs.pop(pair.id, None)
        for s in (pair.client, pair.upstream):
            if pair.masks.get(s):
                try:
                    self._sel.unregister(s)
                except (KeyError, ValueError, OSError):
                    pass
            if abort:
                _reset(s)
            else:
                try:
                    s.close()
                except OSError:
                    pass


# ----------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------

def _parse_target(s):
    host, sep, port = s.rpartition(':')
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError('expected HOST:PORT, got %r' % s)
    return host.strip('[]'), int(port)


def main(argv=None):
    ap = argparse.ArgumentParser(description='fault-injecting TCP proxy for loopback tests')
    ap.add_argument('--target', required=True, type=_parse_target, help='HOST:PORT')
    ap.add_argument('--random-cuts', type=float, default=None, metavar='SECONDS',
                    help='cut one random connection every SECONDS (+-50%%) on average')
    ap.add_argument('--seed', type=int, default=None)
    args = ap.parse_args(argv)

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    proxy = FaultProxy(args.target[0], args.target[1], seed=args.seed)
    if args.random_cuts:
        proxy.random_cuts(args.random_cuts)
    print(json.dumps({'port': proxy.port}), flush=True)
    fd = sys.stdin.fileno()
    try:
        while not stop.is_set():
            try:
                r, _, _ = select.select([fd], [], [], 0.2)
            except InterruptedError:
                continue
            if r:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    data = b''
                if not data:
                    break
    finally:
        proxy.close()
    print(json.dumps(proxy.counters()), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
