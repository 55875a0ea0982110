"""The modern IM layer of epode.Client: blocking (XEP-0191), the message
archive (XEP-0313 with RSM paging), client state indication (XEP-0352,
``client.set_active()``), and builders for today's message features.

Reading the features of a received message needs nothing here: every
``epode.Message`` has them as attributes (``msg.replace_id``,
``msg.retract_id``, ``msg.reactions_to``/``msg.reactions``,
``msg.reply_to_id``/``msg.reply_body``, ``msg.marker``/``msg.marker_id``,
``msg.markable``, ``msg.hints``, ``msg.timestamp``, ``msg.occupant_id``,
``msg.archive_id``) and ``msg.same_sender(original_from)`` for the check
a correction, retraction or reaction update needs before it is applied.

``client.blocking`` and ``client.mam`` wrap epode's C helpers
(``epode._epode.Blocking``/``Mam``, reachable as ``.raw``); the protocol
work and its checks (pushes only from our account, archive results only
from the archive asked) are done in C.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, Callable, Iterable, NamedTuple, Optional, Union

from . import _epode
from ._epode import Message, StanzaError
from ._im import _Helper, _Outcome, _status_error

__all__ = ["Blocking", "Mam", "Page", "correction", "marker", "reactions", "reply",
           "retraction"]

_TimeArg = Union[None, _dt.datetime, float, int, str]


# ---- builders ----------------------------------------------------------------

def correction(to: str, body: str, replace_id: str, type: str = "chat") -> Message:
    """A correction (XEP-0308) of the message ``replace_id`` (always the
    first message's id, also when correcting a correction)."""
    m = Message(to, body, type)
    m.set_replace(replace_id)
    return m


def retraction(to: str, id: str, type: str = "chat") -> Message:
    """A retraction (XEP-0424, urn:xmpp:message-retract:1) of message
    ``id``, with a fallback body and a store hint."""
    return _epode.build_retraction(to, id, None if type == "normal" else type)


def reactions(to: str, id: str, emojis: Iterable[str], type: str = "chat") -> Message:
    """Our complete set of reactions (XEP-0444) to message ``id``; an
    empty set removes them all. A single reaction is still a set:
    ``["👍"]`` (a plain string is refused: its characters would each
    become a reaction)."""
    if isinstance(emojis, (str, bytes)):
        raise TypeError("reactions() takes a collection of reactions, e.g. [%r], not a string"
                        % (emojis,))
    return _epode.build_reactions(to, id, list(emojis), type)


def reply(to: str, body: str, reply_id: str, *, reply_to: Optional[str] = None,
          quote: Optional[str] = None, type: str = "chat") -> Message:
    """A reply (XEP-0461) to message ``reply_id`` written by ``reply_to``;
    ``quote`` goes before ``body`` as "> " lines, marked as a fallback."""
    return _epode.build_reply(to, body, reply_to, reply_id, quote, type)


def marker(to: str, id: str, marker: str = "displayed", type: str = "chat",
           thread: Optional[str] = None) -> Message:
    """A chat marker (XEP-0333) for message ``id``."""
    return _epode.build_marker(to, id, marker, type, thread)


# ---- blocking ----------------------------------------------------------------

def _jids(jids: Union[str, Iterable[str]]) -> tuple:
    return (jids,) if isinstance(jids, str) else tuple(jids)


class Blocking(_Helper):
    """The account's blocklist (XEP-0191): fetched at every login, kept
    current by the server's pushes (only those from our own account).

    ``await blocking.block(jid)`` (a JID or several), ``unblock(jid)``,
    ``unblock_all()``; ``await blocking.list()`` asks the server again and
    returns the list; ``blocking.blocked`` is the local copy (a tuple of
    normalized JIDs), ``jid in blocking`` checks it. ``@blocking.on_change``
    registers ``fn(event, jids)``: 'loaded', 'blocked', 'unblocked',
    'unblocked_all', 'limit'. Refusals raise ``epode.StanzaError``."""

    def __init__(self, client) -> None:
        super().__init__(client, _epode.Blocking(client.connection))
        self._handlers: list = []
        self._raw.on_event = self._on_event

    def _on_event(self, event: str, jids: tuple) -> None:
        self._dispatch(self._handlers, event, jids)

    def on_change(self, fn: Callable[[str, tuple], Any]):
        self._handlers.append(fn)
        return fn

    def remove_handler(self, fn) -> None:
        self._remove(fn, self._handlers)

    def _request(self, what: str, start: Callable, callback, result=None):
        out = _Outcome(self, callback, what, optional=False)

        def answered(status: int, condition: Optional[str]) -> None:
            if status == 0 and condition is None:
                out.set(result() if result else None)
            elif status == 0:
                out.set(error=StanzaError(condition))
            else:
                out.set(error=_status_error(status, what))
        start(answered)
        return out.future

    def block(self, jids: Union[str, Iterable[str]], *, callback=None):
        return self._request("block", lambda cb: self._raw.block(_jids(jids), cb), callback)

    def unblock(self, jids: Union[str, Iterable[str]], *, callback=None):
        return self._request("unblock", lambda cb: self._raw.unblock(_jids(jids), cb), callback)

    def unblock_all(self, *, callback=None):
        return self._request("unblock_all", lambda cb: self._raw.unblock_all(cb), callback)

    def list(self, *, callback=None):
        """Fetches the blocklist from the server; the result is a list of
        JIDs (and ``blocked`` is updated)."""
        return self._request("blocklist", lambda cb: self._raw.fetch(cb), callback,
                             lambda: list(self._raw.list()))

    @property
    def blocked(self) -> tuple:
        return self._raw.list()

    @property
    def received(self) -> bool:
        return self._raw.received

    def is_blocked(self, jid: str) -> bool:
        return self._raw.is_blocked(jid)

    def __contains__(self, jid: object) -> bool:
        return isinstance(jid, str) and self._raw.is_blocked(jid)

    def __repr__(self) -> str:
        return "<epode.Blocking %d blocked>" % len(self._raw.list())


# ---- the archive ---------------------------------------------------------------

def _ms(t: _TimeArg) -> Optional[int]:
    if t is None:
        return None
    if isinstance(t, str):
        return _epode.time_parse(t)
    if isinstance(t, _dt.datetime):
        if t.tzinfo is None:
            t = t.replace(tzinfo=_dt.timezone.utc)
        return int(round(t.timestamp() * 1000))
    if isinstance(t, (int, float)):
        return int(round(t * 1000))
    raise TypeError("a time is a datetime, seconds since the epoch, or an XEP-0082 string")


class Page(NamedTuple):
    """One page of an archive query: its ``messages`` (epode.Message,
    oldest first) and the RSM facts: ``first``/``last`` archive ids (to
    page backwards / forwards), ``complete`` (nothing more in that
    direction), ``total`` (the server's count for the query, None if it
    gave none or an unusable one)."""
    messages: list
    first: Optional[str]
    last: Optional[str]
    complete: bool
    total: Optional[int]


class Mam(_Helper):
    """The message archive (XEP-0313): ``await client.mam.fetch(with_=None,
    start=None, end=None, max=100)`` returns up to ``max`` archived
    messages (a Page, oldest first), paging through RSM as needed;
    ``page()`` asks one page; ``catch_up(last_id)`` everything after an
    archive id. Each message is an ``epode.Message`` with ``archive_id``
    and ``timestamp`` (the archive's). ``archive=`` a room's JID queries a
    MUC archive. Times are datetimes, seconds since the epoch or XEP-0082
    strings. Results not from the archive asked are ignored (counted in
    ``raw.rejected``)."""

    def __init__(self, client) -> None:
        super().__init__(client, _epode.Mam(client.connection))

    def _one(self, what: str, callback, **kw):
        out = _Outcome(self, callback, what, optional=False)
        got: list = []

        def done(status, condition, first, last, complete, count, results) -> None:
            if status == 0 and condition is None:
                out.set(Page(got, first, last, bool(complete), None if count < 0 else count))
            elif status == 0:
                out.set(error=StanzaError(condition))
            else:
                out.set(error=_status_error(status, what))
        self._raw.fetch(got.append, done, **kw)
        return out.future

    def page(self, with_: Optional[str] = None, start: _TimeArg = None, end: _TimeArg = None,
             max: int = 100, *, after: Optional[str] = None, before: Optional[str] = None,
             archive: Optional[str] = None, callback=None):
        """One RSM page: after an archive id (forwards), before one
        (backwards; "" for the last page), or the first page."""
        return self._one("archive query", callback, archive=archive, with_=with_,
                         start=_ms(start), end=_ms(end), max=max, after=after, before=before)

    async def fetch(self, with_: Optional[str] = None, start: _TimeArg = None,
                    end: _TimeArg = None, max: int = 100, *, archive: Optional[str] = None,
                    after: Optional[str] = None, before: Optional[str] = None,
                    page_size: int = 100) -> list:
        """Up to ``max`` messages, oldest first: from the start of the
        range (or ``after``) forwards, or with ``before`` ("" for the most
        recent) backwards, as many pages as it takes."""
        if max <= 0:
            raise ValueError("max must be positive")
        out: list = []
        backwards = before is not None
        cursor_after, cursor_before = after, before
        while len(out) < max:
            n = min(page_size, max - len(out))
            p = await self.page(with_, start, end, n, after=cursor_after, before=cursor_before,
                                archive=archive)
            if backwards:
                out[0:0] = p.messages
            else:
                out.extend(p.messages)
            if p.complete or not p.messages or not (p.first if backwards else p.last):
                break
            if backwards:
                cursor_before = p.first
            else:
                cursor_after = p.last
        return out

    def catch_up(self, last_id: Optional[str], page_size: int = 100, *, callback=None):
        """Every message of our archive after ``last_id`` (the archive id
        of the last message handled), paging forwards until complete: a
        Page whose ``messages`` are all of them (``first``/``last`` those
        of the last page)."""
        return self._one("catch-up", callback, max=page_size, after=last_id, catch_up=True)

    @property
    def last_id(self) -> Optional[str]:
        """The last archive id seen (live messages our server stamped, and
        what a catch-up delivered): where ``Client(..., catch_up=True)``
        goes on from. Store it; set it back before connect() after a
        restart."""
        return self._raw.last_id

    @last_id.setter
    def last_id(self, value: Optional[str]) -> None:
        self._raw.last_id = value

    def __repr__(self) -> str:
        return "<epode.Mam>"
