"""Small proxies of the tests' own, on 127.0.0.1, for epode's proxy
transports: SOCKS5 (RFC 1928, no-auth or user/password of RFC 1929; the
destination by name, IPv4 or IPv6) and HTTP CONNECT (optional Basic
credentials). Each runs an asyncio loop in a thread, resolves names only
through its own `routes` table (name, port) -> (host, port) — so a test
knows exactly what it was asked for and nothing goes to a real resolver —
and records every request in `requests` as (name, port).

`cut()` resets every tunnel open now (for stream-management tests);
later connections go through as before."""
import asyncio
import base64
import socket
import struct
import threading


class _Proxy:
    def __init__(self, routes=None, user=None, password=None):
        self.routes = dict(routes or {})
        self.user, self.password = user, password
        self.requests = []
        self.auth_failures = 0
        self._writers = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(5)

    def _run(self):
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._client, '127.0.0.1', 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    def _route(self, name, port):
        self.requests.append((name, port))
        if (name, port) in self.routes:
            return self.routes[(name, port)]
        if name in ('127.0.0.1', '::1', 'localhost'):
            return ('127.0.0.1', port)
        return None

    async def _pipe(self, reader, writer):
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            try:
                writer.close()
            except Exception:
                pass

    def cut(self):
        """Resets every tunnel open now (both sides see a reset)."""
        def do():
            for w in list(self._writers):
                sock = w.get_extra_info('socket')
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
                w.close()
            self._writers.clear()
        self._loop.call_soon_threadsafe(do)

    def close(self):
        async def stop():
            self._server.close()
            for w in list(self._writers):
                w.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._loop.stop()
        asyncio.run_coroutine_threadsafe(stop(), self._loop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()

    @property
    def address(self):
        return '127.0.0.1:%d' % self.port


class Socks5Proxy(_Proxy):
    """url(): socks5://[user:password@]127.0.0.1:port"""

    def url(self, user=None, password=None):
        if user is None:
            user, password = self.user, self.password
        cred = '%s:%s@' % (user, password) if user is not None else ''
        return 'socks5://%s%s' % (cred, self.address)

    async def _client(self, reader, writer):
        try:
            ver, n = await reader.readexactly(2)
            methods = await reader.readexactly(n)
            if ver != 5:
                writer.close()
                return
            if self.user is not None:
                if 2 not in methods:
                    writer.write(b'\x05\xff')
                    await writer.drain()
                    writer.close()
                    return
                writer.write(b'\x05\x02')
                v, ul = await reader.readexactly(2)
                user = await reader.readexactly(ul)
                pl = (await reader.readexactly(1))[0]
                pw = await reader.readexactly(pl)
                if (user.decode(), pw.decode()) != (self.user, self.password):
                    self.auth_failures += 1
                    writer.write(b'\x01\x01')
                    await writer.drain()
                    writer.close()
                    return
                writer.write(b'\x01\x00')
            else:
                if 0 not in methods:
                    writer.write(b'\x05\xff')
                    writer.close()
                    return
                writer.write(b'\x05\x00')
            ver, cmd, _, atyp = await reader.readexactly(4)
            if atyp == 1:
                name = socket.inet_ntop(socket.AF_INET, await reader.readexactly(4))
            elif atyp == 4:
                name = socket.inet_ntop(socket.AF_INET6, await reader.readexactly(16))
            elif atyp == 3:
                ln = (await reader.readexactly(1))[0]
                name = (await reader.readexactly(ln)).decode()
            else:
                writer.close()
                return
            port = struct.unpack('!H', await reader.readexactly(2))[0]
            dest = self._route(name, port)
            if cmd != 1 or dest is None:
                writer.write(b'\x05\x04\x00\x01\0\0\0\0\0\0')  # host unreachable
                await writer.drain()
                writer.close()
                return
            try:
                sreader, swriter = await asyncio.open_connection(*dest)
            except OSError:
                writer.write(b'\x05\x05\x00\x01\0\0\0\0\0\0')  # connection refused
                await writer.drain()
                writer.close()
                return
            writer.write(b'\x05\x00\x00\x01\x7f\x00\x00\x01' + struct.pack('!H', dest[1]))
            await writer.drain()
            self._writers.update((writer, swriter))
            try:
                await asyncio.gather(self._pipe(reader, swriter), self._pipe(sreader, writer))
            finally:
                self._writers.discard(writer)
                self._writers.discard(swriter)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            writer.close()


class HttpConnectProxy(_Proxy):
    """url(): http://[user:password@]127.0.0.1:port"""

    def url(self, user=None, password=None):
        if user is None:
            user, password = self.user, self.password
        cred = '%s:%s@' % (user, password) if user is not None else ''
        return 'http://%s%s' % (cred, self.address)

    async def _client(self, reader, writer):
        try:
            head = await reader.readuntil(b'\r\n\r\n')
            lines = head.decode('latin-1').split('\r\n')
            method, target, _ = lines[0].split(' ', 2)
            headers = {}
            for line in lines[1:]:
                if ':' in line:
                    k, v = line.split(':', 1)
                    headers[k.strip().lower()] = v.strip()
            if self.user is not None:
                want = 'Basic ' + base64.b64encode(
                    ('%s:%s' % (self.user, self.password)).encode()).decode()
                if headers.get('proxy-authorization') != want:
                    self.auth_failures += 1
                    writer.write(b'HTTP/1.1 407 Proxy Authentication Required\r\n'
                                 b'Proxy-Authenticate: Basic realm="test"\r\n'
                                 b'Content-Length: 0\r\n\r\n')
                    await writer.drain()
                    writer.close()
                    return
            if method != 'CONNECT':
                writer.write(b'HTTP/1.1 405 Method Not Allowed\r\n\r\n')
                writer.close()
                return
            host, _, port = target.rpartition(':')
            dest = self._route(host.strip('[]'), int(port))
            if dest is None:
                writer.write(b'HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n')
                await writer.drain()
                writer.close()
                return
            try:
                sreader, swriter = await asyncio.open_connection(*dest)
            except OSError:
                writer.write(b'HTTP/1.1 502 Bad Gateway\r\n\r\n')
                await writer.drain()
                writer.close()
                return
            writer.write(b'HTTP/1.1 200 Connection established\r\n\r\n')
            await writer.drain()
            self._writers.update((writer, swriter))
            try:
                await asyncio.gather(self._pipe(reader, swriter), self._pipe(sreader, writer))
            finally:
                self._writers.discard(writer)
                self._writers.discard(swriter)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError,
                OSError, ValueError):
            writer.close()
