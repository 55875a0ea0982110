"""How epode contexts are driven: by an asyncio event loop, or by run().

A context is always in epode's external-loop mode. The C side keeps the
fds epode wants watched and its next deadline, and passes changes to the
context's *driver*. ``AsyncioDriver`` maps them onto ``loop.add_reader``,
``loop.add_writer`` and ``loop.call_later``; with no driver,
``Context.run()`` polls them itself with the GIL released.

Each thread has one default context, shared by the clients made in that
thread, so they share the DNS resolver and the TLS trust store.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from . import _epode

READ = _epode.READ
WRITE = _epode.WRITE

#: The logging level of epode's XML traffic (credentials redacted): below
#: DEBUG, so that only a logger set to it (or lower) shows the stanzas.
XML = 5
logging.addLevelName(XML, "XML")
_LEVELS = {_epode.LOG_ERROR: logging.ERROR, _epode.LOG_WARN: logging.WARNING,
           _epode.LOG_INFO: logging.INFO, _epode.LOG_DEBUG: logging.DEBUG,
           _epode.LOG_XML: XML}

_local = threading.local()


def log_to_logging(ctx: _epode.Context, name: str = "epode") -> None:
    """Routes the context's log lines to the logging module: the logger
    ``name + "." + area`` ("epode.tls", "epode.sasl", "epode.xml-in",
    ...) at ERROR, WARNING, INFO, DEBUG, or XML for the traffic. The XML
    traffic is only produced when the ``name`` logger is enabled for
    level XML when this is called (the default context calls it when it
    is made: set the level first, e.g. ``logging.basicConfig(level=
    epode.XML)``); call it again after changing that."""
    base = logging.getLogger(name)
    loggers: dict[str, logging.Logger] = {}

    def emit(level: int, area: str, msg: str) -> None:
        lg = loggers.get(area)
        if lg is None:
            lg = loggers[area] = logging.getLogger(name + "." + area)
        lg.log(_LEVELS.get(level, logging.DEBUG), "%s", msg)

    ctx.set_log(emit, _epode.LOG_XML if base.isEnabledFor(XML) else _epode.LOG_DEBUG)


def default_context() -> _epode.Context:
    """The calling thread's shared context (made on first use)."""
    ctx = getattr(_local, "context", None)
    if ctx is None:
        ctx = _local.context = _epode.Context()
        log_to_logging(ctx)
    return ctx


class AsyncioDriver:
    """Runs a context's fds and timer on one asyncio event loop."""

    __slots__ = ("context", "loop", "_fds", "_timer", "_expire")

    def __init__(self, context: _epode.Context, loop: asyncio.AbstractEventLoop):
        self.context = context
        self.loop = loop
        self._fds: dict[int, int] = {}
        self._timer: asyncio.TimerHandle | asyncio.Handle | None = None
        self._expire = context.process  # called as (-1, 0)

    # Called by the C side whenever epode's wishes change.
    def watch(self, fd: int, events: int) -> None:
        loop = self.loop
        old = self._fds.get(fd, 0)
        if loop.is_closed():
            # The loop is gone (asyncio.run() returned): remember what
            # epode wants; the next loop that binds gets it replayed.
            if events:
                self._fds[fd] = events
            else:
                self._fds.pop(fd, None)
            return
        process = self.context.process
        if old & READ and not events & READ:
            loop.remove_reader(fd)
        if old & WRITE and not events & WRITE:
            loop.remove_writer(fd)
        if events & READ and not old & READ:
            loop.add_reader(fd, process, fd, READ)
        if events & WRITE and not old & WRITE:
            loop.add_writer(fd, process, fd, WRITE)
        if events:
            self._fds[fd] = events
        else:
            self._fds.pop(fd, None)

    def timer(self, ms: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.loop.is_closed():
            return  # replayed to the next loop with the fds
        if ms == 0:
            self._timer = self.loop.call_soon(self._expire, -1, 0)
        elif ms > 0:
            self._timer = self.loop.call_later(ms / 1000.0, self._expire, -1, 0)

    def detach(self) -> None:
        """Stops watching anything on this loop (a closed loop is fine)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.loop.is_closed():
            for fd, events in self._fds.items():
                if events & READ:
                    self.loop.remove_reader(fd)
                if events & WRITE:
                    self.loop.remove_writer(fd)
        self._fds.clear()


def bind_to_running_loop(ctx: _epode.Context) -> asyncio.AbstractEventLoop:
    """Makes the running asyncio loop drive `ctx`; returns that loop.

    A context follows the loop that uses it: after ``asyncio.run()``
    returns, the next one takes over. Two loops running at once on the
    same context is an error (contexts belong to one thread anyway).
    """
    loop = asyncio.get_running_loop()
    if ctx.running:
        raise RuntimeError("this context is being run by run() in this thread")
    drv = ctx.driver
    if isinstance(drv, AsyncioDriver):
        if drv.loop is loop:
            return loop
        if drv.loop.is_running() and not drv.loop.is_closed():
            raise RuntimeError("this epode context is driven by another running event loop")
        drv.detach()
    ctx.set_driver(AsyncioDriver(ctx, loop))
    return loop


def bind_native(ctx: _epode.Context) -> None:
    """Takes `ctx` back from any asyncio loop, for Context.run()."""
    drv = ctx.driver
    if drv is None:
        return
    if isinstance(drv, AsyncioDriver) and drv.loop.is_running() and not drv.loop.is_closed():
        raise RuntimeError(
            "this epode context is driven by a running asyncio loop: "
            "use 'await client.connect()' there instead of run()")
    drv.detach()
    ctx.set_driver(None)
