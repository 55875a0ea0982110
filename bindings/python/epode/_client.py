"""epode.Client: an XMPP client connection for asyncio programs (and
blocking ones, through run())."""

from __future__ import annotations

import asyncio
import inspect
import logging
import secrets
import threading
from typing import Any, Awaitable, Callable, Optional

from . import _epode
from ._epode import Connection, Error, Iq, Stanza, StanzaError
from ._loop import bind_native, bind_to_running_loop, default_context

log = logging.getLogger("epode")

_EVENTS = ("connecting", "tls_up", "authenticated", "ready", "disconnected", "resumed",
           "drained")


class Client:
    """One XMPP account's connection.

    ``Client(jid, password, server=None, port=None, ca_file=None,
    direct_tls=False)`` makes an unconnected client. Secure by default:
    TLS is required and the server's certificate is verified against the
    system's trust store (or ``ca_file``) and the JID's domain. Without
    ``server`` the domain's SRV records are used.

    Keyword-only options: ``context`` (an ``epode.Context``; default: the
    calling thread's shared one), ``tls`` ('required', 'direct',
    'optional' or 'disabled'; ``direct_tls=True`` is 'direct'),
    ``verify`` (False accepts any certificate — tests only),
    ``mechanisms`` (SASL mechanisms allowed, e.g. "SCRAM-SHA-256"),
    ``stream_management`` (XEP-0198, with resumption), ``reconnect``
    (automatic reconnection with backoff), ``keepalive`` (seconds),
    ``connect_timeout`` and ``login_timeout`` (seconds),
    ``resend_unacked`` (with stream management: when a session cannot be
    resumed, send its unconfirmed stanzas again on the fresh one instead
    of handing them back to ``connection.on_ack``), ``proxy``
    ('socks5://[user:password@]host[:port]', or 'http://…' for HTTP
    CONNECT: the proxy is asked for ``server`` or the JID's domain, and no
    DNS query is made for the domain; ValueError for a malformed URL),
    ``websocket`` ('wss://host[:port]/path', or 'ws://…' to loopback:
    XMPP over WebSocket, RFC 7395, instead of TCP; ``server`` and
    ``port`` are then not used), ``bosh`` ('https://host[:port]/path', or
    'http://…' to loopback: XMPP over BOSH, XEP-0124/0206, HTTP requests
    instead of a TCP stream; ``server`` and ``port`` are then not used;
    not together with ``websocket``).
    """

    def __init__(self, jid: str, password: Optional[str], server: Optional[str] = None,
                 port: Optional[int] = None, ca_file: Optional[str] = None,
                 direct_tls: bool = False, *, context: Optional[_epode.Context] = None,
                 tls: Optional[str] = None, verify: bool = True,
                 mechanisms: Optional[str] = None, stream_management: bool = False,
                 reconnect: bool = False, keepalive: Optional[float] = None,
                 connect_timeout: Optional[float] = None,
                 login_timeout: Optional[float] = None, catch_up: bool = False,
                 resend_unacked: bool = False, sasl2: bool = True,
                 user_agent: Optional[str] = None,
                 fast_token_store: Optional[Any] = None,
                 proxy: Optional[str] = None, websocket: Optional[str] = None,
                 bosh: Optional[str] = None) -> None:
        if websocket is not None and bosh is not None:
            raise ValueError("websocket= and bosh= exclude each other")
        if direct_tls and tls not in (None, "direct"):
            raise ValueError("direct_tls=True conflicts with tls=%r" % (tls,))
        if port is not None and not 0 < port < 65536:
            raise ValueError("port must be between 1 and 65535")
        self._context = context if context is not None else default_context()
        conn = self._conn = Connection(self._context, jid, password)
        conn.configure(server=server, port=port or 0, tls="direct" if direct_tls else tls,
                       ca_file=ca_file, verify=None if verify else False,
                       mechanisms=mechanisms, stream_management=stream_management or None,
                       reconnect=reconnect or None, keepalive=keepalive,
                       connect_timeout=connect_timeout, login_timeout=login_timeout,
                       resend_unacked=resend_unacked or None)
        if proxy is not None:
            # socks5:// or http:// (CONNECT); ValueError when malformed
            conn.set_proxy(proxy)
        if websocket is not None:
            # wss:// or ws://; ValueError when malformed
            conn.set_websocket(websocket)
        if bosh is not None:
            # https:// or http://; ValueError when malformed
            conn.set_bosh(bosh)
        # SASL2 / FAST (XEP-0388, XEP-0484): a store that knows its
        # user-agent id (FastTokenFile) gives it, unless one is given
        if user_agent is None and fast_token_store is not None:
            user_agent = getattr(fast_token_store, "user_agent_id", None)
        if not sasl2:
            _epode.conn_set_sasl2(conn, False)
        if user_agent is not None:
            _epode.conn_set_user_agent(conn, user_agent)
        if fast_token_store is not None:
            if (hasattr(fast_token_store, "user_agent_id")
                    and fast_token_store.user_agent_id != _epode.conn_user_agent_id(conn)):
                # A FastTokenFile keeps the id in use: the one epode made,
                # or a user_agent= given that differs from the file's (its
                # token, filed under the other id, is dropped then).
                fast_token_store.user_agent_id = _epode.conn_user_agent_id(conn)
            _epode.conn_set_fast(conn, fast_token_store)
        self.jid = jid
        # Every handler by its id (see add_handler), in the order added:
        # id -> (kind, fn, the connection's stanza handler id or None).
        self._handlers: dict[int, tuple[str, Callable[..., Any], Optional[int]]] = {}
        self._event_handlers: dict[int, Callable[[str], Any]] = {}
        self._error_handlers: dict[int, Callable[[BaseException], Any]] = {}
        self._next_handler_id = 0
        self._connect_waiters: list[asyncio.Future] = []
        self._disconnect_waiters: list[asyncio.Future] = []
        self._drain_waiters: list[asyncio.Future] = []
        self._tasks: set[asyncio.Task] = set()
        self._end_hooks: list[Callable[[], Any]] = []  # told when the connection ends for good
        self._native = False
        self._owner_thread = threading.get_ident()
        self._stop_requested: Optional[Optional[str]] = None
        self._stop_pending = False
        conn.on_event = self._on_event
        conn.on_error = self._on_callback_error
        conn.spawn = self._spawn
        # The hot paths go straight to C.
        self.send = conn.send
        self.send_message = conn.send_message
        self.send_presence = conn.send_presence
        self._catch_up = bool(catch_up)
        self._message_filters: dict[int, tuple] = {}
        if catch_up:
            self.mam.raw.set_auto_catch_up(self._deliver_archived, self._catch_up_done)
        if self._eager_presence:
            # The one IM helper that cannot catch up when made late (the
            # presence that arrived before it is gone), so it exists from
            # the start; the others fetch what they need when made.
            self._raw_presence: Optional[Any] = _epode.PresenceTracker(conn)
            # What every client answers from its first moment, as the C
            # helpers do once made: pings (XEP-0199) and service discovery
            # (XEP-0030, announcing the ping feature). client.disco wraps
            # this same helper when first used.
            self.__dict__["_im_ping"] = _epode.Ping(conn)
            self._raw_disco: Optional[Any] = _epode.Disco(conn)
            self._raw_disco.add_feature("urn:xmpp:ping", None)

    # ---- state -------------------------------------------------------------

    @property
    def bound_jid(self) -> Optional[str]:
        """The full JID the server bound for us, while connected."""
        return self._conn.bound_jid

    @property
    def user_agent_id(self) -> str:
        """The SASL2 user-agent id (XEP-0388): the one given, or the one
        epode made; keep it with a FAST token store (tokens are filed
        under it)."""
        return str(_epode.conn_user_agent_id(self._conn))

    @property
    def is_ready(self) -> bool:
        """True while logged in (stanzas may flow)."""
        return self._conn.ready

    @property
    def connection(self) -> Connection:
        """The low-level epode._epode.Connection (options, features, ...)."""
        return self._conn

    @property
    def last_error(self) -> Optional[Error]:
        """After a disconnection: why, as an epode.Error (not raised)."""
        return self._conn.last_error

    # ---- sending ------------------------------------------------------------
    # __init__ binds these names on the instance straight to the C methods
    # (the hot path); the class methods below are what help() shows, and
    # do the same.

    def send(self, stanza: Any) -> None:
        """Sends a stanza (an epode.Stanza, or XML text) as it is. Raises
        epode.Error: EJID for a malformed 'to', ESTATE when not connected,
        EBUSY when the connection holds as much as it may (see drain())."""
        self._conn.send(stanza)

    def send_message(self, to: str, body: str, type: str = "chat", *,
                     id: Optional[str] = None) -> str:
        """Sends a <message/> with a <body/> and returns its id (a fresh
        random one unless given). Raises epode.Error (EJID) for a malformed
        ``to``, (ESTATE) when not connected."""
        return self._conn.send_message(to, body, type, id=id)

    def send_presence(self, show: Optional[str] = None, status: Optional[str] = None,
                      priority: int = 0, to: Optional[str] = None) -> None:
        """Sends our presence: broadcast (remembered, and sent again after
        an automatic reconnection) or, with ``to``, directed to one JID.
        ``show``: None (available), 'chat', 'away', 'xa', 'dnd' or
        'unavailable'."""
        self._conn.send_presence(show, status, priority, to)

    # ---- handlers -----------------------------------------------------------

    _KINDS = {"message": "message", "presence": "presence", "iq": "iq", "stanza": None}

    def add_handler(self, kind: str, fn: Callable[..., Any], *, name: Optional[str] = None,
                    ns: Optional[str] = None, type: Optional[str] = None) -> int:
        """Adds a handler and returns its id, for ``remove_handler(id)``.

        ``kind`` is 'message', 'presence', 'iq' (``fn(stanza)``; ``ns`` and
        ``type`` filter), 'stanza' (any stanza; ``name`` filters too),
        'event' (``fn(event_name)``) or 'error' (``fn(exception)``).
        Handlers are added, never replaced: every matching one runs, in
        the order they were added, whatever the others return. A stanza
        handler returns True (handled), None (pass: not mine) or, for an
        IQ get/set, the reply stanza to send; an IQ get/set that no
        handler takes is answered service-unavailable. The ``on_*``
        decorators call this and return ``fn``."""
        if not callable(fn):
            raise TypeError("a handler must be callable, not %r" % (fn,))
        if kind in ("event", "error"):
            if name is not None or ns is not None or type is not None:
                raise TypeError("%s handlers take no name, ns or type filter" % kind)
            cid = None
        elif kind in self._KINDS:
            if kind != "stanza" and name is not None:
                raise TypeError("name= is for 'stanza' handlers")
            target = self._skip_duplicates(fn) if kind == "message" and self._catch_up else fn
            cid = self._conn.add_handler(target, self._KINDS[kind] if kind != "stanza" else name,
                                         ns, type)
        else:
            raise ValueError("kind must be 'message', 'presence', 'iq', 'stanza', 'event' "
                             "or 'error', not %r" % (kind,))
        self._next_handler_id += 1
        hid = self._next_handler_id
        self._handlers[hid] = (kind, fn, cid)
        if kind == "message":
            self._message_filters[hid] = (type, ns)
        if kind == "event":
            self._event_handlers[hid] = fn
        elif kind == "error":
            self._error_handlers[hid] = fn
        return hid

    def remove_handler(self, handler: Any) -> None:
        """Removes the handler ``add_handler`` gave this id, or, given a
        function, every registration of it (any kind). Also from inside a
        handler: a removed handler is not called again, not even later in
        the event under way. epode.Error (ENOTFOUND) if there is no such
        handler, as Connection.remove_handler and C's epode_conn_remove()
        say."""
        if isinstance(handler, int) and not isinstance(handler, bool):
            hids = [handler] if handler in self._handlers else []
        else:
            hids = [h for h, (_, fn, _) in self._handlers.items() if fn == handler]
        if not hids:
            from ._im import _error
            raise _error(_epode.ENOTFOUND, "remove_handler: no such handler: %r" % (handler,))
        for hid in hids:
            kind, _, cid = self._handlers.pop(hid)
            if cid is not None:
                self._conn.remove_handler(cid)
            self._event_handlers.pop(hid, None)
            self._error_handlers.pop(hid, None)
            self._message_filters.pop(hid, None)

    # ---- automatic catch-up (catch_up=True) ---------------------------------

    def _skip_duplicates(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        mam = self.mam.raw

        def live(msg: Any) -> Any:
            if mam.is_duplicate(msg):
                return True  # a catch-up handed it over already
            return fn(msg)
        return live

    def _catch_up_done(self, status: int, condition: Optional[str], first: Optional[str],
                       last: Optional[str], complete: bool, count: int, results: int) -> None:
        """The end of an automatic catch-up: a failure goes to the error
        handlers (on_error), as an epode.StanzaError for an error answer
        (item-not-found: the stored last_id is not in the archive) or an
        epode.Error; a success is logged at debug level."""
        if status == 0 and condition is None:
            log.debug("epode: catch-up delivered %d archived message(s)", results)
            return
        if condition is not None:
            hint = (" (client.mam.last_id %r is not in the archive: set it to None, or to an"
                    " id the archive has)" % self.mam.last_id) if condition == "item-not-found" else ""
            exc: BaseException = StanzaError(condition, "automatic catch-up: the archive answered "
                                             "%s%s" % (condition, hint))
        else:
            from ._im import _status_error
            exc = _status_error(status, "automatic catch-up")
        self._on_callback_error(exc)

    def _deliver_archived(self, msg: Any) -> None:
        """A message a catch-up fetched: to every message handler whose
        type and payload filters it matches, as a live one would go."""
        for hid, (kind, fn, _) in list(self._handlers.items()):
            if kind != "message" or hid not in self._handlers:
                continue
            type_, ns = self._message_filters.get(hid, (None, None))
            if type_ is not None and type_ != (msg.type or "normal"):
                continue
            if ns is not None and (not msg.children or msg.children[0].ns != ns):
                continue
            try:
                r = fn(msg)
                if inspect.isawaitable(r):
                    self._spawn(r, None)
            except Exception as exc:  # reported, never fatal
                self._on_callback_error(exc)

    def _decorator(self, kind, fn, name, ns, type):
        if fn is not None:
            self.add_handler(kind, fn, name=name, ns=ns, type=type)
            return fn

        def register(f):
            self.add_handler(kind, f, name=name, ns=ns, type=type)
            return f
        return register

    def on_message(self, fn=None, *, type: Optional[str] = None, ns: Optional[str] = None):
        """Registers ``fn(msg)`` for incoming messages (every one: with or
        without a body, errors included — check ``msg.body``/``msg.type``).
        Use as ``@client.on_message`` or ``@client.on_message(type="chat")``.
        ``fn`` may be a coroutine function (asyncio only). Returns ``fn``;
        ``add_handler('message', fn)`` does the same and returns an id."""
        return self._decorator("message", fn, None, ns, type)

    def on_presence(self, fn=None, *, type: Optional[str] = None, ns: Optional[str] = None):
        """Registers ``fn(presence)`` for incoming presence stanzas."""
        return self._decorator("presence", fn, None, ns, type)

    def on_iq(self, fn=None, *, ns: Optional[str] = None, type: Optional[str] = None):
        """Registers ``fn(iq)`` for incoming IQs whose payload is in ``ns``.
        For a get/set it answers by returning the reply (``iq.reply()``
        plus children) or raising ``epode.StanzaError(condition)``;
        returning None passes it on (unanswered requests get
        service-unavailable). A coroutine function's result is used the
        same way once it completes."""
        return self._decorator("iq", fn, None, ns, type)

    def on_stanza(self, fn=None, *, name: Optional[str] = None, ns: Optional[str] = None,
                  type: Optional[str] = None):
        """Registers ``fn(stanza)`` for any incoming stanza matching name,
        payload namespace and type (None: any)."""
        return self._decorator("stanza", fn, name, ns, type)

    def on_event(self, fn: Callable[[str], Any]):
        """Registers ``fn(event)`` for connection events: 'connecting',
        'tls_up', 'authenticated', 'ready', 'disconnected', 'resumed',
        'drained' (sending is welcome again: see drain()) — the names of
        epode_conn_event_name() in C and of the Lua binding."""
        self.add_handler("event", fn)
        return fn

    def on_error(self, fn: Callable[[BaseException], Any]):
        """Registers ``fn(exception)`` for exceptions raised by handlers.
        Without one they are logged to the 'epode' logger; they never stop
        the client."""
        self.add_handler("error", fn)
        return fn

    # ---- callbacks from C ------------------------------------------------------

    def _on_event(self, name: str) -> None:
        if name in ("ready", "resumed"):
            waiters, self._connect_waiters = self._connect_waiters, []
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)
            # back after a cut: a drain() that waited across it returns
            # now if what was queued went out (else at 'drained')
            if not self._conn.draining:
                self._settle_drain(None)
        elif name == "drained" and (self._conn.ready or not self._conn.will_reconnect):
            self._settle_drain(None)  # (not while a cut waits to be repaired)
        if name == "disconnected" and not self._conn.will_reconnect:
            # Over for good: what was not written went with the link. (A
            # cut that will be repaired keeps drain() waiting: stream
            # management resends what the server did not acknowledge.)
            self._settle_drain(self._conn.last_error
                               or _make_error(_epode.ECLOSED, "the connection ended"))
            self._finish(self._conn.last_error)
        for hid, fn in list(self._event_handlers.items()):
            if hid not in self._event_handlers:
                continue  # removed by an earlier handler of this event
            try:
                r = fn(name)
                if asyncio.iscoroutine(r):
                    self._spawn(r, None)
            except Exception as exc:  # reported, never fatal
                self._on_callback_error(exc)

    def _settle_drain(self, err: Optional[Error]) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for fut in waiters:
            if not fut.done():
                if err is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(err)

    def _finish(self, err: Optional[Error]) -> None:
        """The connection has ended for good: settle everyone waiting."""
        self._settle_drain(err if err is not None else
                           _make_error(_epode.ECLOSED, "the connection ended"))
        waiters, self._connect_waiters = self._connect_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_exception(err if err is not None else
                                  _make_error(_epode.ECLOSED, "closed before the login ended"))
        waiters, self._disconnect_waiters = self._disconnect_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)
        for hook in list(self._end_hooks):
            try:
                hook()
            except Exception as exc:
                self._on_callback_error(exc)
        if self._native:
            self._context.stop()

    def _close(self, status: Optional[str] = None) -> bool:
        """Starts closing; True if a 'disconnected' event will follow.
        When none will (not connected, or only waiting to reconnect),
        waiters are settled at once."""
        if self._conn.close(status):
            return True
        self._finish(None)
        return False

    def _on_callback_error(self, exc: BaseException) -> None:
        for hid, fn in list(self._error_handlers.items()):
            if hid not in self._error_handlers:
                continue
            try:
                fn(exc)
            except Exception:
                log.exception("epode: the error handler %r failed", fn)
        if not self._error_handlers:
            log.error("epode: a handler raised %s", type(exc).__name__, exc_info=exc)

    def _spawn(self, aw: Awaitable, stanza: Optional[Stanza]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            if asyncio.iscoroutine(aw):
                aw.close()
            raise RuntimeError("an async handler needs the client to run under asyncio "
                               "(await client.connect()), not run()") from None
        task = loop.create_task(self._run_async_handler(aw, stanza))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_async_handler(self, aw: Awaitable, stanza: Optional[Stanza]) -> None:
        request = (isinstance(stanza, Iq) and stanza.type in ("get", "set"))
        try:
            result = await aw
        except StanzaError as err:
            if request:
                self._answer_error(stanza, err.condition, err.text, err.type)
            else:
                self._on_callback_error(err)
            return
        except Exception as exc:
            self._on_callback_error(exc)
            if request:
                self._answer_error(stanza, "internal-server-error")
            return
        if isinstance(result, Stanza):
            self._send_quietly(result)
        elif request and result is not True:
            # None passes the request on, as from a plain handler: nobody
            # else can take it now, so it gets what unhandled IQs get.
            self._answer_error(stanza, "service-unavailable")

    def _answer_error(self, request: Stanza, condition: Optional[str], text: Optional[str] = None,
                      type: Optional[str] = None) -> None:
        try:
            reply = request.error_reply(condition or "undefined-condition", text=text, type=type)
        except ValueError:  # an unknown condition or type from the application
            reply = request.error_reply("undefined-condition", text=text)
        self._send_quietly(reply)

    def _send_quietly(self, st: Stanza) -> None:
        try:
            self._conn.send(st)
        except Error as exc:
            if exc.code != _epode.ESTATE:
                self._on_callback_error(exc)

    # ---- asyncio ------------------------------------------------------------

    async def connect(self, timeout: Optional[float] = None) -> None:
        """Connects and logs in; returns once stanzas may flow. Raises
        epode.Error (with .reason 'auth', 'tls', 'network', ...) if the
        connection fails, epode.TimeoutError after ``timeout`` seconds."""
        loop = bind_to_running_loop(self._context)
        if self._conn.ready:
            return
        fut = loop.create_future()
        already = bool(self._connect_waiters) or self._conn.will_reconnect
        self._connect_waiters.append(fut)
        if not already:  # else join the login under way
            try:
                self._conn.connect()
            except BaseException:
                self._connect_waiters.remove(fut)
                raise
        try:
            if timeout is None:
                await fut
            else:
                await asyncio.wait_for(asyncio.shield(fut), timeout)
        except (asyncio.TimeoutError, asyncio.CancelledError) as exc:
            if fut in self._connect_waiters:
                self._connect_waiters.remove(fut)
            fut.cancel()
            self._close()
            # Without a timeout of ours, a TimeoutError is the library's
            # (connect or login timeout): it already says which.
            if isinstance(exc, asyncio.TimeoutError) and timeout is not None:
                raise _epode.TimeoutError("connect: no login within %g s" % timeout) from None
            raise

    async def disconnect(self, status: Optional[str] = None) -> None:
        """Closes the stream gracefully (with an unavailable presence
        carrying ``status``, if given) and waits until it has ended.
        Does nothing if not connected."""
        loop = bind_to_running_loop(self._context)
        fut = loop.create_future()
        self._disconnect_waiters.append(fut)
        self._close(status)
        await fut

    async def wait_disconnected(self) -> None:
        """Waits until the connection has ended for good (not a cut that
        automatic reconnection will repair)."""
        loop = bind_to_running_loop(self._context)
        if (not self._conn.ready and not self._conn.will_reconnect and not self._connect_waiters
                and not self._conn.closing):
            return
        fut = loop.create_future()
        self._disconnect_waiters.append(fut)
        await fut

    async def drain(self) -> None:
        """Waits until sending is welcome again: returns at once while the
        bytes not yet written to the server are at or under the low-water
        mark (64 KiB) and no send was refused, else on the 'drained'
        event. A sender of many stanzas awaits it now and then (or after
        epode.Error EBUSY: the connection holds as much as it may, and
        the stanza was not sent). Across a cut that reconnection will
        repair it waits until the connection is back (stream management
        resends what the server had not acknowledged): a send that says
        ESTATE while ``connection.will_reconnect`` is true is such a cut,
        and awaiting drain() is the way to wait for it. Raises
        epode.Error if the connection ends for good first."""
        loop = bind_to_running_loop(self._context)
        if not self._conn.draining and (self._conn.ready or not self._conn.will_reconnect):
            return
        fut = loop.create_future()
        self._drain_waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut in self._drain_waiters:
                self._drain_waiters.remove(fut)
            raise

    async def __aenter__(self) -> "Client":
        await self.connect()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.disconnect()

    async def iq(self, iq, timeout: float = 30.0) -> Iq:
        """Sends an IQ get/set (a Stanza or XML text) and returns the
        result stanza. Raises epode.StanzaError for an error answer
        (.condition, .type, .text, .stanza), epode.TimeoutError without an
        answer in ``timeout`` seconds, epode.Error (ECANCELED) if the
        connection ended first."""
        fut = bind_to_running_loop(self._context).create_future()

        def answered(answer, status):
            if fut.done():
                return
            if answer is None:
                fut.set_exception(_epode.TimeoutError("no answer to the IQ in time")
                                  if status == _epode.ETIMEDOUT else
                                  _make_error(status, "the connection ended before the answer"))
            elif answer.type == "error":
                fut.set_exception(answer.error)
            else:
                fut.set_result(answer)

        wait_id = self._conn.send_iq(iq, answered, timeout)
        try:
            return await fut
        except asyncio.CancelledError:
            try:
                self._conn.remove_handler(wait_id)
            except Error:
                pass
            raise

    async def change_password(self, new_password: str, old_password: Optional[str] = None,
                              timeout: float = 30.0) -> None:
        """Changes the logged-in account's password (XEP-0077); later
        logins need the new one. ``old_password`` answers a server that
        asks for it in a form. Raises epode.StanzaError for a refusal
        (``.condition``: 'not-allowed', 'not-acceptable', ...)."""
        from ._register import change_password
        await change_password(self, new_password, old_password, timeout)

    async def unregister(self, timeout: float = 30.0) -> None:
        """Removes (cancels) the logged-in account (XEP-0077); the server
        usually ends the stream right after. Raises epode.StanzaError for
        a refusal."""
        from ._register import unregister
        await unregister(self, timeout)

    # ---- ping (XEP-0199) and software version (XEP-0092) ------------------------

    async def ping(self, jid: Optional[str] = None, timeout: float = 30.0) -> float:
        """Pings ``jid`` (None: our server) and returns the round trip in
        seconds. Raises epode.StanzaError if it answered with an error
        (``.condition``, e.g. 'service-unavailable': it exists but does
        not answer pings), epode.TimeoutError
        without an answer in ``timeout`` seconds, epode.Error (ECANCELED)
        if the connection ended first, (ESTATE) when not logged in, (EJID)
        for a bad ``jid``. The client answers others' pings from its
        creation (epode_ping_* in C)."""
        fut = bind_to_running_loop(self._context).create_future()

        def answered(status: int, condition: Optional[str], rtt: float) -> None:
            if fut.done():
                return
            if status != 0:
                from ._im import _status_error
                fut.set_exception(_status_error(status, "ping"))
            elif condition is not None:
                fut.set_exception(StanzaError(condition))
            else:
                fut.set_result(rtt)

        helper = self.__dict__.get("_im_ping")
        if helper is None:
            helper = self.__dict__["_im_ping"] = _epode.Ping(self._conn)
        helper.send(answered, jid, timeout)
        return await fut

    def set_version(self, name: str, version: str, os: Optional[str] = None) -> None:
        """Answers XEP-0092 software version queries with ``name``,
        ``version`` and ``os`` (None: not disclosed) from now on; call
        again to change them. Without it, version queries are answered
        service-unavailable (until ``version()`` is first used)."""
        helper = self.__dict__.get("_im_version")
        if helper is None:
            self.__dict__["_im_version"] = _epode.SoftwareVersion(self._conn, name, version, os)
        else:
            helper.set(name, version, os)

    async def version(self, jid: Optional[str] = None,
                      timeout: float = 30.0) -> tuple[Optional[str], Optional[str], Optional[str]]:
        """Asks ``jid`` (None: our server) for its software (XEP-0092) and
        returns (name, version, os), each None when not told. Raises as
        ping() does (epode.StanzaError for an error answer). The helper
        this needs also answers others' queries: before set_version() it
        says name 'epode' and the library's version, and no OS."""
        fut = bind_to_running_loop(self._context).create_future()

        def answered(status: int, condition: Optional[str], name: Optional[str],
                     version: Optional[str], os: Optional[str]) -> None:
            if fut.done():
                return
            if status != 0:
                from ._im import _status_error
                fut.set_exception(_status_error(status, "version"))
            elif condition is not None:
                fut.set_exception(StanzaError(condition))
            else:
                fut.set_result((name, version, os))

        helper = self.__dict__.get("_im_version")
        if helper is None:
            helper = self.__dict__["_im_version"] = _epode.SoftwareVersion(
                self._conn, "epode", _epode.epode_version)
        helper.query(answered, jid, timeout)
        return await fut

    # ---- blocking -------------------------------------------------------------

    def run(self, timeout: Optional[float] = None) -> None:
        """Connects (unless already connected) and serves until the
        connection ends: disconnect() from a handler, stop(), or Ctrl-C.
        The GIL is released while waiting. Raises epode.Error if the
        connection failed or was lost (not after our own close), and
        epode.TimeoutError if ``timeout`` seconds pass first."""
        ctx = self._context
        bind_native(ctx)
        self._conn.spawn = None
        if not self._conn.ready and not self._conn.will_reconnect:
            try:
                self._conn.connect()
            except Error as exc:
                if exc.code != _epode.ESTATE:
                    raise
        self._native = True
        try:
            finished = ctx.run(timeout)
            if self._stop_pending:
                # stop() came from another thread: close here, in ours.
                self._stop_pending = False
                if self._close(self._stop_requested):
                    finished = ctx.run(timeout if timeout is not None else 30.0)
        finally:
            self._native = False
            self._conn.spawn = self._spawn
        if not finished:
            raise _epode.TimeoutError("run: still connected after %g s" % timeout)
        err = self._conn.last_error
        if err is not None and self._conn.reason != "closed":
            raise err

    def stop(self, status: Optional[str] = None) -> None:
        """Closes the connection; run() returns once it has ended.
        Callable from another thread while run() serves (the close then
        happens in run()'s thread)."""
        if threading.get_ident() != self._owner_thread:
            # The context belongs to the thread that made the client:
            # ask run() there to close (the wait is woken at once).
            self._stop_requested = status
            self._stop_pending = True
            self._context.stop()
            return
        self._close(status)

    def __repr__(self) -> str:
        state = "ready" if self._conn.ready else "not connected"
        return "<epode.Client %s %s>" % (self.bound_jid or self.jid, state)

    # ---- the IM layer (epode/_im.py) ----------------------------------------
    # Each helper is made on first use and kept for the client's life, and
    # first use may come before or after connect(): the roster and the
    # blocklist fetch at once when made while logged in; the presence
    # tracker's C part is made with the client (presence that arrived
    # cannot be asked for again), its Python wrapper on first use. Caps is
    # the exception by nature: it marks the presence we send after it is
    # made, and learns others' from their presence after that.

    _eager_presence = True  # Component: False (no roster, no contacts' presence)

    #: The XEP-0115 node ``client.caps`` announces (names the software);
    #: set it (on the class or the client) before first using client.caps.
    caps_node = "https://epode.example/python"

    def _im_helper(self, name: str, make: Callable[[], Any]) -> Any:
        helper = self.__dict__.get(name)
        if helper is None:
            helper = self.__dict__[name] = make()
        return helper

    @property
    def roster(self) -> "Roster":
        """The roster (epode.Roster): contacts, fetched at every login."""
        from ._im import Roster
        return self._im_helper("_im_roster", lambda: Roster(self))

    @property
    def presence(self) -> "PresenceTracker":
        """The presence tracker (epode.PresenceTracker): who is online, and
        subscription requests; it knows every presence received since the
        client was made, whenever first used."""
        from ._im import PresenceTracker
        return self._im_helper("_im_presence",
                               lambda: PresenceTracker(self, self.__dict__.pop("_raw_presence",
                                                                               None)))

    @property
    def disco(self) -> "Disco":
        """Service discovery (epode.Disco): what we answer, and queries."""
        from ._im import Disco
        return self._im_helper("_im_disco", lambda: Disco(self))

    @property
    def caps(self) -> "Caps":
        """Entity capabilities (epode.Caps) on client.disco, with node
        ``caps_node``. Make it before sending presence."""
        from ._im import Caps
        return self._im_helper("_im_caps", lambda: Caps(self, self.disco, self.caps_node))

    @property
    def muc(self) -> "Muc":
        """Multi-user chat (epode.Muc): rooms, their occupants, messages."""
        from ._im import Muc
        return self._im_helper("_im_muc", lambda: Muc(self))

    @property
    def blocking(self) -> "Blocking":
        """The blocklist (epode.Blocking, XEP-0191): block(), unblock(),
        list(); fetched at every login."""
        from ._modern import Blocking
        return self._im_helper("_im_blocking", lambda: Blocking(self))

    @property
    def mam(self) -> "Mam":
        """The message archive (epode.Mam, XEP-0313): fetch(), page(),
        catch_up(). With ``Client(..., catch_up=True)`` the client catches
        up by itself on every fresh session (the first login, or a
        reconnection that could not resume): what the archive holds after
        ``client.mam.last_id`` (the last archive id seen; store it and set
        it back before connect() to survive restarts) reaches the message
        handlers as archived messages (``msg.archive_id`` set,
        ``msg.timestamp`` the archive's), and a live copy of one already
        delivered is not handed on again. A catch-up that fails (the
        archive does not know ``last_id``: item-not-found) is reported to
        the ``on_error`` handlers as an epode.StanzaError."""
        from ._modern import Mam
        return self._im_helper("_im_mam", lambda: Mam(self))

    @property
    def pubsub(self) -> "PubSub":
        """Publish-subscribe and PEP (epode.PubSub, XEP-0060/0163):
        publish(), fetch(), retract(), subscribe(), on_event. Usable
        before or after connect()."""
        from ._pep import PubSub
        return self._im_helper("_im_pep_pubsub", lambda: PubSub(self))

    @property
    def bookmarks(self) -> "Bookmarks":
        """Bookmarks (epode.Bookmarks, XEP-0402): list(), add(), remove();
        fetched at every login, kept current by notifications."""
        from ._pep import Bookmarks
        return self._im_helper("_im_pep_bookmarks", lambda: Bookmarks(self))

    @property
    def avatar(self) -> "Avatar":
        """Avatars (epode.Avatar, XEP-0084 and XEP-0153 hashes):
        publish(png_bytes), fetch(jid), on_change."""
        from ._pep import Avatar
        return self._im_helper("_im_pep_avatar", lambda: Avatar(self))

    @property
    def nickname(self) -> "Nickname":
        """Nicknames (epode.Nickname, XEP-0172): set(nick), on_change."""
        from ._pep import Nickname
        return self._im_helper("_im_pep_nickname", lambda: Nickname(self))

    @property
    def commands(self) -> "Commands":
        """Ad-hoc commands (epode.Commands, XEP-0050): ours, listed on
        client.disco, and others' (list(), execute()). Usable before or
        after connect()."""
        from ._commands import Commands
        return self._im_helper("_im_commands", lambda: Commands(self))

    def command(self, node: str, name: str, *, allow: Any = None) -> Callable:
        """Decorator: offers ``fn(session)`` as the ad-hoc command ``node``
        named ``name`` (see epode.Commands; ``allow`` None: our own account
        only)."""
        def register(fn: Callable) -> Callable:
            self.commands.add(node, name, fn, allow=allow)
            return fn
        return register

    def set_active(self, active: bool) -> None:
        """Client State Indication (XEP-0352): tell the server whether a
        user is looking (True) or not (False: it may hold back what is not
        urgent). Sent only when the server offers it; remembered across
        reconnects. Callable before connect()."""
        csi = self._im_helper("_im_csi", lambda: _epode.Csi(self._conn))
        csi.set_active(bool(active))

    @property
    def uploader(self) -> "Uploader":
        """HTTP File Upload (epode.Uploader, XEP-0363): its service, and
        options for tests; made on first use, usable before connect()."""
        from ._upload import Uploader
        return self._im_helper("_im_uploader", lambda: Uploader(self))

    async def upload(self, source: Any, filename: Optional[str] = None,
                     content_type: Optional[str] = None, *,
                     progress: Optional[Callable[[int, int], Any]] = None) -> str:
        """Uploads a file (a path) or bytes to the server's upload
        service (XEP-0363) over HTTPS and returns the URL to share;
        raises epode.UploadError (see epode.Uploader)."""
        return await self.uploader.upload(source, filename, content_type, progress=progress)

    def send_url(self, to: str, url: str, type: str = "chat") -> None:
        """Sends ``url`` to ``to`` as the body and as Out-of-Band data
        (XEP-0066), so clients show an uploaded file inline."""
        _epode.upload_send_url(self._conn, to, url, type)


def _make_error(code: int, message: str) -> Error:
    err = Error(message)
    err.code = code
    err.name = next((k for k, v in _epode.error_codes.items() if v == code), None)
    return err


class Component(Client):
    """An external component's connection (XEP-0114): a gateway or service
    that speaks for every JID of its own domain.

    ``Component(domain, secret, server=..., port=None)`` connects to the
    server's component port (``port`` None: 5347) and proves itself with
    the handshake on ``secret`` (kept like a password: wiped when freed).
    There is no SASL, resource binding, roster or stream management;
    handlers, ``connect()``, ``run()``, ``reconnect`` and ``keepalive``
    work as for ``epode.Client``, and ``bound_jid`` is the domain.

    Every stanza sent must carry a ``from_`` in ``domain`` (the domain or a
    JID at it): ``send()`` raises ``epode.Error`` (EJID) otherwise.
    ``send_message()`` and ``send_presence()`` take ``from_`` and use the
    domain when it is None.

    TLS: a cleartext stream is allowed to a loopback address only, unless
    ``tls='disabled'`` (an explicit loosening: everything travels in
    clear); ``tls='direct'`` for a component port that speaks TLS,
    verified against ``domain`` (``ca_file``, ``verify`` as for Client).
    A wrong secret ends the connection with the server's stream error:
    ``connect()`` raises an ``epode.Error`` whose condition is
    'not-authorized'.
    """

    def __init__(self, domain: str, secret: str, server: str, port: Optional[int] = None, *,
                 context: Optional[_epode.Context] = None, tls: Optional[str] = None,
                 ca_file: Optional[str] = None, verify: bool = True, reconnect: bool = False,
                 keepalive: Optional[float] = None, connect_timeout: Optional[float] = None,
                 login_timeout: Optional[float] = None, proxy: Optional[str] = None) -> None:
        if not server:
            raise ValueError("a component needs the server's address (server=...)")
        if tls not in (None, "required", "direct", "optional", "disabled"):
            raise ValueError("tls must be 'required', 'direct', 'optional' or 'disabled'")
        super().__init__(domain, None, server, port, ca_file, context=context, tls=tls,
                         verify=verify, reconnect=reconnect, keepalive=keepalive,
                         connect_timeout=connect_timeout, login_timeout=login_timeout,
                         proxy=proxy)
        self._conn.configure(component=(domain, secret))
        self.domain = domain
        self.send_message = self._send_message_from  # type: ignore[method-assign]
        self.send_presence = self._send_presence_from  # type: ignore[method-assign]

    def _send_message_from(self, to: str, body: str, type: str = "chat", *,
                           id: Optional[str] = None, from_: Optional[str] = None) -> str:
        msg = _epode.Message(to, body, type, id or secrets.token_hex(8))
        msg.from_ = from_ or self.domain
        self._conn.send(msg)
        return msg.id or ""

    def _send_presence_from(self, show: Optional[str] = None, status: Optional[str] = None,
                            priority: int = 0, to: Optional[str] = None, *,
                            from_: Optional[str] = None, type: Optional[str] = None) -> None:
        if show == "unavailable":
            show, type = None, "unavailable"
        pres = _epode.Presence(to, type, show, status, priority or None)
        pres.from_ = from_ or self.domain
        self._conn.send(pres)

    def __repr__(self) -> str:
        state = "ready" if self.is_ready else "not ready"
        return "<epode.Component %s %s>" % (self.domain, state)

    _eager_presence = False  # no contacts: nothing to track
