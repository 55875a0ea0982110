"""The IM layer of epode.Client: the roster, a presence tracker, service
discovery, entity capabilities and multi-user chat, as Python objects.

Each class wraps one of epode's C helpers (``epode._epode.Roster`` and
friends, reachable as ``.raw``); the protocol work is done in C. A
Client makes them on first use of its properties ``client.roster``,
``client.presence``, ``client.disco``, ``client.caps`` and
``client.muc`` and keeps them for its life. First use may come before or
after connect(): the roster and the blocklist are fetched at once when
made while logged in, and the presence tracker's C part exists from the
client's start (presence cannot be fetched again).

Requests that wait for an answer (``roster.add()``, ``disco.info()``,
``muc.join()``, ...) return an ``asyncio.Future`` to await; they need a
running asyncio loop. Under the blocking ``client.run()`` pass
``callback=fn`` instead: ``fn(result, error)`` is called once with the
result (error None) or with None and the exception. The requests whose
outcome is also told by events (roster fetch/add/remove, MUC join) may
be made without either: they then return None, and a failure is
reported to the client's ``on_error`` handlers (MUC joins: as 'error'
events only).

Callbacks registered with the decorators (``@roster.on_change`` ...) may
be coroutine functions (asyncio only). What they raise is reported to
the client's ``on_error`` handlers (or logged); it never stops the
client.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, Callable, Iterator, NamedTuple, Optional

from . import _epode
from ._epode import Error, Presence, Stanza, StanzaError

__all__ = ["Caps", "Disco", "DiscoField", "DiscoForm", "DiscoInfo", "DiscoItem", "Identity",
           "Muc", "MucEvent", "Occupant", "PresenceInfo", "PresenceTracker", "Room", "Roster",
           "RosterItem"]

_ERROR_NAMES = {code: name for name, code in _epode.error_codes.items()}


# ---- values -----------------------------------------------------------------

class RosterItem(NamedTuple):
    """One contact of the roster."""
    jid: str
    name: Optional[str]
    subscription: str  #: 'none', 'to', 'from', 'both' ('remove' in a 'removed' event)
    ask: bool  #: a subscription request of ours is pending
    groups: tuple[str, ...]


class PresenceInfo(NamedTuple):
    """One resource's presence as the tracker knows it."""
    jid: str  #: the full JID (the bare one for presence from a bare JID)
    resource: Optional[str]
    show: str  #: 'chat', 'available', 'away', 'xa', 'dnd' or 'unavailable'
    status: Optional[str]
    priority: int
    bare: str
    error: Optional[str]  #: the condition of a presence error ('error' changes)
    stanza: Optional[Presence]  #: the last presence stanza received for it


class Identity(NamedTuple):
    """A disco identity."""
    category: str
    type: str
    name: Optional[str]
    lang: Optional[str]


class DiscoField(NamedTuple):
    """A field of an XEP-0128 form."""
    var: Optional[str]
    type: Optional[str]
    values: tuple[str, ...]


class DiscoForm(NamedTuple):
    """An XEP-0128 extended information form."""
    form_type: Optional[str]
    type: Optional[str]
    fields: list[DiscoField]

    def get(self, var: str) -> Optional[tuple[str, ...]]:
        """The values of field `var`, or None if the form has no such field."""
        for f in self.fields:
            if f.var == var:
                return f.values
        return None


class DiscoInfo(NamedTuple):
    """A disco#info answer."""
    identities: list[Identity]
    features: frozenset[str]
    forms: list[DiscoForm]
    node: Optional[str]

    def has_feature(self, var: str) -> bool:
        """True if `var` is among the features."""
        return var in self.features

    def has_identity(self, category: str, type: Optional[str] = None) -> bool:
        """True if an identity has this category (and type, if given)."""
        return any(i.category == category and (type is None or i.type == type)
                   for i in self.identities)


class DiscoItem(NamedTuple):
    """A disco#items entry."""
    jid: str
    node: Optional[str]
    name: Optional[str]


class Occupant(NamedTuple):
    """An occupant of a MUC room, as the room last described it."""
    nick: str
    jid: Optional[str]  #: the real JID, None when the room hides it
    role: str
    affiliation: str
    show: Optional[str]
    status: Optional[str]
    is_self: bool


class Room(NamedTuple):
    """A snapshot of a MUC room we are in (or joining)."""
    jid: str
    nick: str  #: our nick there
    joined: bool
    subject: Optional[str]
    occupants: list[Occupant]

    def occupant(self, nick: str) -> Optional[Occupant]:
        """The occupant with this nick, or None."""
        for o in self.occupants:
            if o.nick == nick:
                return o
        return None


class MucEvent(NamedTuple):
    """Something that happened in a room. ``type`` is 'joined',
    'occupant_joined', 'occupant_changed', 'occupant_left', 'message',
    'private', 'subject', 'error' or 'left'; fields that do not apply are
    None or False."""
    type: str
    room: str
    nick: Optional[str]  #: the occupant concerned or the sender; None: the room
    occupant: Optional[Occupant]
    body: Optional[str]
    subject: Optional[str]
    is_self: bool  #: from or about our own occupant
    history: bool  #: a message or subject replayed from the room's history
    created: bool  #: 'joined': we created the room
    condition: Optional[str]  #: 'error': the stanza error condition
    text: Optional[str]  #: 'error': its text
    fatal: bool  #: 'error': the join failed, the room is gone
    retrying: bool  #: 'error' (nick conflict): joining again as `nick`
    codes: tuple[int, ...]  #: the muc#user status codes
    stanza: Optional[Stanza]


def _disco_info(raw) -> DiscoInfo:
    node, ids, feats, forms = raw
    return DiscoInfo([Identity._make(i) for i in ids], frozenset(feats),
                     [DiscoForm(ft, t, [DiscoField._make(f) for f in fields])
                      for ft, t, fields in forms], node)


def _room(raw) -> Room:
    jid, nick, joined, subject, occs = raw
    return Room(jid, nick, joined, subject, [Occupant._make(o) for o in occs])


def _error(code: int, message: str) -> Error:
    cls = _epode.TimeoutError if code == _epode.ETIMEDOUT else Error
    err = cls(message)
    err.code = code
    err.name = _ERROR_NAMES.get(code)
    return err


def _status_error(status: int, what: str) -> Error:
    if status == _epode.ETIMEDOUT:
        return _error(status, "%s: no answer in time" % what)
    if status == _epode.ECANCELED:
        return _error(status, "%s: the connection ended before the answer" % what)
    return _error(status, "%s: %s" % (what, _epode.strerror(status)))


# ---- plumbing ---------------------------------------------------------------

class _Outcome:
    """Where the answer to one request goes: an asyncio future, a
    callback(result, error), or nowhere (an error is then reported)."""

    __slots__ = ("_helper", "future", "_cb", "_report")

    def __init__(self, helper: "_Helper", callback: Optional[Callable], what: str,
                 optional: bool, report: bool = True) -> None:
        self._helper = helper
        self._cb = callback
        self._report = report
        self.future: Optional[asyncio.Future] = None
        if callback is not None:
            if not callable(callback):
                raise TypeError("callback must be callable")
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            if not optional:
                raise RuntimeError("%s needs a running asyncio loop (await it), or pass "
                                   "callback=fn(result, error)" % what) from None
            return
        self.future = loop.create_future()

    def set(self, result: Any = None, error: Optional[BaseException] = None) -> None:
        fut = self.future
        if fut is not None:
            if fut.done() or fut.get_loop().is_closed():
                return
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(result)
        elif self._cb is not None:
            self._helper._call(self._cb, result, error)
        elif error is not None and self._report:
            self._helper._report(error)

    def roster_answer(self, status: int, condition: Optional[str], text: Optional[str]) -> None:
        if status == 0 and condition is None:
            self.set(None)
        elif status == 0:
            self.set(error=StanzaError(condition, text))
        else:
            self.set(error=_status_error(status, "roster request"))


class _Helper:
    """What the wrappers share: the client, the C object, reporting."""

    def __init__(self, client, raw) -> None:
        self._client = client
        self._raw = raw

    @property
    def raw(self):
        """The low-level object from epode._epode (callback-based)."""
        return self._raw

    @property
    def client(self):
        """The epode.Client this belongs to."""
        return self._client

    def _report(self, exc: BaseException) -> None:
        self._client._on_callback_error(exc)

    def _call(self, fn: Callable, *args) -> Any:
        """fn(*args); an exception is reported, an awaitable run as a task."""
        try:
            r = fn(*args)
            if inspect.isawaitable(r):
                self._client._spawn(r, None)
                return None
            return r
        except Exception as exc:  # reported, never fatal
            self._report(exc)
            return None

    def _dispatch(self, handlers: list, *args) -> None:
        for fn in list(handlers):
            self._call(fn, *args)

    @staticmethod
    def _remove(fn, *lists) -> None:
        found = False
        for lst in lists:
            while fn in lst:
                lst.remove(fn)
                found = True
        if not found:
            raise _error(_epode.ENOTFOUND, "remove_handler: no such handler: %r" % (fn,))


# ---- roster ---------------------------------------------------------------------

class Roster(_Helper):
    """The account's contact list (RFC 6121 §2), fetched by epode at every
    login and kept current by the server's pushes.

    ``len(roster)``, ``for item in roster`` (RosterItem, in JID order),
    ``roster[jid]`` (KeyError if absent), ``jid in roster``,
    ``roster.get(jid)``. The roster is empty until the first fetch
    completes: ``await roster.fetch()`` (or wait for the 'received'
    event). Made after login, it fetches on the next loop turn.
    """

    def __init__(self, client) -> None:
        super().__init__(client, _epode.Roster(client.connection))
        self._handlers: list[Callable] = []
        self._fetches: list[_Outcome] = []
        self._raw.on_event = self._on_event

    def _on_event(self, event: str, raw) -> None:
        item = RosterItem._make(raw) if raw is not None else None
        if event in ("received", "fetch_failed"):
            waiters, self._fetches = self._fetches, []
            for w in waiters:
                if event == "received":
                    w.set(self)
                else:
                    w.set(error=_error(_epode.EPROTOCOL if self._client.is_ready
                                       else _epode.ECANCELED, "the roster fetch failed"))
        self._dispatch(self._handlers, event, item)

    def on_change(self, fn: Callable[[str, Optional[RosterItem]], Any]):
        """Registers ``fn(event, item)`` (a decorator): event 'added',
        'updated', 'removed' (item: the contact), 'received' (a fetch
        completed, item None) or 'fetch_failed' (item None)."""
        self._handlers.append(fn)
        return fn

    def remove_handler(self, fn) -> None:
        """Unregisters an on_change function (epode.Error ENOTFOUND if unknown)."""
        self._remove(fn, self._handlers)

    def fetch(self, *, callback: Optional[Callable] = None) -> Optional[asyncio.Future]:
        """Fetches the roster now (joining a fetch under way) and returns a
        future that resolves to the roster once received (epode.Error if
        the fetch failed). epode.Error (ESTATE) at once when not logged
        in. See the module doc for `callback`."""
        out = _Outcome(self, callback, "fetch()", optional=True)
        self._raw.fetch()
        self._fetches.append(out)
        return out.future

    def add(self, jid: str, name: Optional[str] = None, groups=(), *,
            callback: Optional[Callable] = None) -> Optional[asyncio.Future]:
        """Adds `jid` to the roster or updates it (name and groups replace
        what the item had). The future resolves to None once the server
        accepted; epode.StanzaError if it refused. The item itself appears
        with the server's push (an 'added'/'updated' event), which may
        come just before or just after. epode.Error (EJID, ESTATE) at
        once for a bad JID or when not logged in."""
        if isinstance(groups, str):
            groups = (groups,)
        out = _Outcome(self, callback, "add()", optional=True)
        self._raw.add(jid, name, tuple(groups), out.roster_answer)
        return out.future

    def remove(self, jid: str, *, callback: Optional[Callable] = None) -> Optional[asyncio.Future]:
        """Removes `jid` from the roster (ending subscriptions both ways).
        Resolves to None once done; epode.StanzaError if the server
        refused (e.g. 'item-not-found')."""
        out = _Outcome(self, callback, "remove()", optional=True)
        self._raw.remove(jid, out.roster_answer)
        return out.future

    def get(self, jid: str, default: Any = None) -> Optional[RosterItem]:
        """The item for `jid` (compared in normalized form), or `default`."""
        raw = self._raw.find(jid)
        return RosterItem._make(raw) if raw is not None else default

    def __getitem__(self, jid: str) -> RosterItem:
        raw = self._raw.find(jid)
        if raw is None:
            raise KeyError(jid)
        return RosterItem._make(raw)

    def __contains__(self, jid: object) -> bool:
        return isinstance(jid, str) and self._raw.find(jid) is not None

    def __len__(self) -> int:
        return len(self._raw)

    def __iter__(self) -> Iterator[RosterItem]:
        return iter([RosterItem._make(t) for t in self._raw.items()])

    @property
    def version(self) -> Optional[str]:
        """The roster version held (RFC 6121 §2.6), or None."""
        return self._raw.version

    @property
    def received(self) -> bool:
        """True once a fetch completed on the current connection."""
        return self._raw.received

    def __repr__(self) -> str:
        return "<epode.Roster %d items%s>" % (len(self), "" if self.received else ", not received")


# ---- presence --------------------------------------------------------------------

_AUTO = {0: False, 1: True, 2: "mutual"}


class PresenceTracker(_Helper):
    """Who is online on which resources, from the presence the server
    sends us (MUC presence excepted), and the subscription requests
    others send.

    ``client.presence`` may be first used at any time: the Client starts
    the C tracker when it is made, so what arrived before is known. It is
    emptied when the connection ends.
    """

    def __init__(self, client, raw=None) -> None:
        super().__init__(client, raw if raw is not None
                         else _epode.PresenceTracker(client.connection))
        self._handlers: list[Callable] = []
        self._decider: Optional[Callable] = None
        self._raw.on_event = self._on_event
        self._raw.on_subscription = self._on_subscription

    def _on_event(self, change: str, raw) -> None:
        self._dispatch(self._handlers, change, PresenceInfo._make(raw))

    def _on_subscription(self, jid: str, kind: str, status: Optional[str]):
        fn = self._decider
        if fn is None:
            return None
        try:
            verdict = fn(jid, kind, status)
        except Exception as exc:
            self._report(exc)
            return None
        if inspect.isawaitable(verdict):
            aw = self._decide_later(jid, verdict) if kind == "request" else verdict
            try:
                self._client._spawn(aw, None)
            except Exception as exc:
                self._report(exc)
            return None
        if kind != "request" or verdict is None:
            return None
        return bool(verdict)

    async def _decide_later(self, jid: str, aw) -> None:
        verdict = await aw
        if verdict is None:
            return
        (self.approve if verdict else self.deny)(jid)

    def on_change(self, fn: Callable[[str, PresenceInfo], Any]):
        """Registers ``fn(change, info)`` (a decorator): change 'available'
        (a resource came online), 'changed', 'unavailable' (gone, and
        forgotten) or 'error' (a presence error; info.error names it)."""
        self._handlers.append(fn)
        return fn

    def remove_handler(self, fn) -> None:
        """Unregisters an on_change function or the on_subscription one."""
        if fn is self._decider:
            self._decider = None
            return
        self._remove(fn, self._handlers)

    def on_subscription(self, fn: Callable[[str, str, Optional[str]], Any]):
        """Sets (replacing any earlier one) ``fn(jid, kind, status)``, called
        for every subscription stanza someone sends us: kind 'request' (they
        ask to see our presence), 'approved', 'revoked' or 'ended'; jid is
        their bare JID, status their optional message. For a request it
        decides: True approves, False refuses, None leaves it to
        ``auto_accept`` (or to a later approve()/deny()). A coroutine
        function decides when it completes (auto_accept then applies at
        once, so leave it off)."""
        self._decider = fn
        return fn

    @property
    def auto_accept(self):
        """What happens to requests nobody decides: False (the default:
        nothing), True (approve) or 'mutual' (approve and ask back)."""
        return _AUTO[self._raw.auto_accept]

    @auto_accept.setter
    def auto_accept(self, value) -> None:
        if value == "mutual":
            self._raw.auto_accept = 2
        elif value in (None, False, True):
            self._raw.auto_accept = 1 if value else 0
        else:
            raise ValueError("auto_accept must be True, False or 'mutual'")

    def get(self, jid: str) -> Optional[PresenceInfo]:
        """A full JID's presence (for a bare JID: its best resource's), or
        None if offline or unknown."""
        raw = self._raw.get(jid)
        return PresenceInfo._make(raw) if raw is not None else None

    def best(self, jid: str) -> Optional[PresenceInfo]:
        """The best online resource of a bare JID: highest priority, then
        most available show, then the most recent. None if none is online."""
        raw = self._raw.best(jid)
        return PresenceInfo._make(raw) if raw is not None else None

    def resources(self, jid: str) -> list[PresenceInfo]:
        """The online resources of a bare JID, in the order they came."""
        return [PresenceInfo._make(t) for t in self._raw.resources(jid)]

    def contacts(self) -> list[str]:
        """The bare JIDs with at least one resource online."""
        return self._raw.contacts()

    def is_online(self, jid: str) -> bool:
        """True if the (bare or full) JID has a resource online."""
        return self._raw.get(jid) is not None

    def subscribe(self, jid: str, status: Optional[str] = None) -> None:
        """Asks `jid` for a subscription to its presence (with an optional
        message)."""
        self._raw.subscribe(jid, status)

    def approve(self, jid: str) -> None:
        """Approves jid's subscription request (or pre-approves one)."""
        self._raw.approve(jid)

    def deny(self, jid: str) -> None:
        """Refuses jid's pending subscription request."""
        self._raw.deny(jid)

    def cancel(self, jid: str) -> None:
        """Cancels jid's subscription to our presence."""
        self._raw.cancel(jid)

    def unsubscribe(self, jid: str) -> None:
        """Ends our subscription to jid's presence."""
        self._raw.unsubscribe(jid)

    def __repr__(self) -> str:
        return "<epode.PresenceTracker %d contacts online>" % len(self.contacts())


# ---- service discovery ---------------------------------------------------------------

class Disco(_Helper):
    """Service discovery (XEP-0030): what we answer about ourselves (per
    node; node None is the account itself) and queries to others. We start
    as identity client/bot with the disco#info and disco#items features."""

    def __init__(self, client) -> None:
        raw = client.__dict__.pop("_raw_disco", None)  # made with the client
        super().__init__(client, raw if raw is not None else _epode.Disco(client.connection))

    def add_identity(self, category: str, type: str, name: Optional[str] = None,
                     lang: Optional[str] = None, node: Optional[str] = None) -> None:
        """Adds an identity (one with the same category, type and lang gets
        its name replaced)."""
        self._raw.add_identity(category, type, name, lang, node)

    def remove_identity(self, category: str, type: str, lang: Optional[str] = None,
                        node: Optional[str] = None) -> None:
        """Removes an identity (epode.Error ENOTFOUND if absent)."""
        self._raw.remove_identity(category, type, lang, node)

    def add_feature(self, var: str, node: Optional[str] = None) -> None:
        """Adds a feature (twice is harmless)."""
        self._raw.add_feature(var, node)

    def remove_feature(self, var: str, node: Optional[str] = None) -> None:
        """Removes a feature (epode.Error ENOTFOUND if absent)."""
        self._raw.remove_feature(var, node)

    def add_item(self, jid: str, item_node: Optional[str] = None, name: Optional[str] = None,
                 *, node: Optional[str] = None) -> None:
        """Adds an item to what disco#items of `node` answers."""
        self._raw.add_item(jid, item_node, name, node)

    def remove_item(self, jid: str, item_node: Optional[str] = None, *,
                    node: Optional[str] = None) -> None:
        """Removes an item (epode.Error ENOTFOUND if absent)."""
        self._raw.remove_item(jid, item_node, node)

    def add_form(self, form, node: Optional[str] = None) -> None:
        """Adds an XEP-0128 form: a Stanza (or XML text) ``<x
        xmlns='jabber:x:data' type='result'>`` with a hidden FORM_TYPE."""
        self._raw.add_form(form, node)

    def remove_form(self, form_type: str, node: Optional[str] = None) -> None:
        """Removes the form with this FORM_TYPE."""
        self._raw.remove_form(form_type, node)

    def local_info(self, node: Optional[str] = None) -> DiscoInfo:
        """What we answer for `node` (None: ourselves)."""
        return _disco_info(self._raw.local_info(node))

    def _ask(self, items: bool, jid, node, timeout, callback):
        what = "disco.items()" if items else "disco.info()"
        out = _Outcome(self, callback, what, optional=False)

        def answered(status: int, raw, condition: Optional[str]) -> None:
            if status == 0:
                out.set([DiscoItem._make(i) for i in raw[1]] if items else _disco_info(raw))
            elif status == _epode.EPROTOCOL and condition is not None:
                out.set(error=StanzaError(condition, None))
            elif status == _epode.EPROTOCOL:
                out.set(error=_error(status, "%s: the answer holds no disco query" % what))
            else:
                out.set(error=_status_error(status, what))

        get = self._raw.get_items if items else self._raw.get_info
        qid = get(jid, node, answered, timeout)
        fut = out.future
        if fut is not None:
            raw = self._raw
            fut.add_done_callback(lambda f: raw.cancel(qid) if f.cancelled() else None)
        return fut

    def info(self, jid: Optional[str] = None, node: Optional[str] = None, *,
             timeout: Optional[float] = 30.0,
             callback: Optional[Callable] = None) -> Optional[asyncio.Future]:
        """Asks `jid` (None: our own account) for its disco#info (of `node`).
        Resolves to a DiscoInfo; raises epode.StanzaError for an error
        answer, epode.TimeoutError, or epode.Error (ECANCELED) if the
        connection ended. epode.Error (EJID, ESTATE) at once."""
        return self._ask(False, jid, node, timeout, callback)

    def items(self, jid: Optional[str] = None, node: Optional[str] = None, *,
              timeout: Optional[float] = 30.0,
              callback: Optional[Callable] = None) -> Optional[asyncio.Future]:
        """Like info() for disco#items: resolves to a list of DiscoItem."""
        return self._ask(True, jid, node, timeout, callback)

    def __repr__(self) -> str:
        return "<epode.Disco %d features>" % len(self.local_info().features)


# ---- entity capabilities -----------------------------------------------------------------

class Caps(_Helper):
    """Entity capabilities (XEP-0115) on the client's Disco: our
    verification string goes with every available presence we send, and
    others' capabilities are learned (verified, cached) from theirs.

    Make it before sending presence (first use of ``client.caps``); the
    node comes from ``Client.caps_node`` at that moment.
    """

    def __init__(self, client, disco: Disco, node: str) -> None:
        super().__init__(client, _epode.Caps(disco.raw, node))
        self._disco = disco
        self._handlers: list[Callable] = []
        self._raw.on_event = self._on_event

    def _on_event(self, jid: str, raw) -> None:
        self._dispatch(self._handlers, jid, _disco_info(raw) if raw is not None else None)

    def on_change(self, fn: Callable[[str, Optional[DiscoInfo]], Any]):
        """Registers ``fn(jid, info)`` (a decorator): what is known about
        the full JID `jid` changed; info None when nothing is any more."""
        self._handlers.append(fn)
        return fn

    def remove_handler(self, fn) -> None:
        """Unregisters an on_change function."""
        self._remove(fn, self._handlers)

    @property
    def ver(self) -> Optional[str]:
        """Our current verification string (changes with our features)."""
        return self._raw.ver

    @property
    def node(self) -> str:
        """The node we announce (names the software)."""
        return self._raw.node

    @property
    def disco(self) -> Disco:
        """The Disco it computes our capabilities from."""
        return self._disco

    @property
    def cache_count(self) -> int:
        """How many verified entries are cached."""
        return self._raw.cache_count

    def supports(self, jid: str, feature: str) -> Optional[bool]:
        """Does `jid` (a full JID) support `feature`? None when nothing
        verified is known about it (no caps in its presence, or not fetched
        yet)."""
        return self._raw.supports(jid, feature)

    def info(self, jid: str) -> Optional[DiscoInfo]:
        """The verified disco#info of the full JID `jid`, or None."""
        raw = self._raw.info(jid)
        return _disco_info(raw) if raw is not None else None

    def __repr__(self) -> str:
        return "<epode.Caps %s#%s>" % (self.node, self.ver)


# ---- multi-user chat ---------------------------------------------------------------------

class Muc(_Helper):
    """Multi-user chat (XEP-0045) rooms: join, leave, talk, and their
    occupants and subject. Joined rooms are joined again after an
    automatic reconnection.

    A bot::

        @client.muc.on_message
        def on_room_message(ev):
            if ev.body == "!ping" and not ev.history and not ev.is_self:
                client.muc.send(ev.room, "pong")

        await client.connect()
        await client.muc.join("room@conference.example.org", "bot")
    """

    def __init__(self, client) -> None:
        super().__init__(client, _epode.Muc(client.connection))
        self._event_handlers: list[Callable] = []
        self._message_handlers: list[Callable] = []
        self._private_handlers: list[Callable] = []
        self._joins: dict[str, list[_Outcome]] = {}
        self._raw.on_event = self._on_event
        client._end_hooks.append(self._on_end)

    def _settle(self, room: str, result: Any = None, error: Optional[BaseException] = None):
        for out in self._joins.pop(room, ()):
            out.set(result, error)

    def _on_event(self, raw) -> None:
        occ = raw[3]
        ev = MucEvent._make(raw[:3] + (Occupant._make(occ) if occ is not None else None,)
                            + raw[4:])
        if ev.type == "joined":
            room = self._raw.room(ev.room)
            self._settle(ev.room, _room(room) if room is not None else None)
        elif ev.type == "error" and ev.fatal:
            self._settle(ev.room, error=StanzaError(ev.condition or "undefined-condition",
                                                    ev.text, stanza=ev.stanza))
        elif ev.type == "left":
            self._settle(ev.room, error=_error(_epode.ECANCELED, "left %s before joining"
                                               % ev.room))
        self._dispatch(self._event_handlers, ev)
        if ev.type == "message":
            self._dispatch(self._message_handlers, ev)
        elif ev.type == "private":
            self._dispatch(self._private_handlers, ev)

    def _on_end(self) -> None:
        """The connection has ended for good (the client says so, whether
        a 'disconnected' event came or a pending reconnection was
        stopped): joins still waiting fail, and epode forgets those rooms
        too, so a failed join is not quietly completed at the next login."""
        for room in list(self._joins):
            self._drop_pending(room)
            self._settle(room, error=_error(_epode.ECANCELED, "the connection ended "
                                            "before %s was joined" % room))

    def _drop_pending(self, room: str) -> None:
        r = self._raw.room(room)
        if r is not None and not r[2]:  # not joined (yet)
            try:
                self._raw.leave(room)
            except Error:
                pass

    def _join_done(self, room: str, out: "_Outcome", fut: asyncio.Future) -> None:
        """A join's future was cancelled (or timed out): the join stops
        too, unless someone else still waits for the same room."""
        if not fut.cancelled():
            return
        waiting = self._joins.get(room)
        if waiting and out in waiting:
            waiting.remove(out)
            if not waiting:
                del self._joins[room]
                self._drop_pending(room)

    def on_event(self, fn: Callable[[MucEvent], Any]):
        """Registers ``fn(event)`` (a decorator) for every room event (a
        MucEvent): joins and departures, messages, subject, errors."""
        self._event_handlers.append(fn)
        return fn

    def on_message(self, fn: Callable[[MucEvent], Any]):
        """Registers ``fn(event)`` (a decorator) for groupchat messages with
        a body: event.room, .nick (the sender), .body, .history (replayed
        from the room's history), .is_self (our own, echoed), .stanza."""
        self._message_handlers.append(fn)
        return fn

    def on_private(self, fn: Callable[[MucEvent], Any]):
        """Registers ``fn(event)`` (a decorator) for private messages from
        an occupant (event.room, .nick, .body)."""
        self._private_handlers.append(fn)
        return fn

    def remove_handler(self, fn) -> None:
        """Unregisters a function from on_event/on_message/on_private."""
        self._remove(fn, self._event_handlers, self._message_handlers, self._private_handlers)

    def join(self, room: str, nick: str, password: Optional[str] = None, *,
             history: Optional[int] = None, seconds: Optional[int] = None,
             callback: Optional[Callable] = None) -> Optional[asyncio.Future]:
        """Joins `room` (a bare JID "room@service") as `nick`. History: at
        most `history` messages (0: none) of the last `seconds` (None: the
        room's default). Not logged in yet: the join goes out at login.

        Returns a future that resolves to the Room once in (a new room is
        created with the default configuration); it raises
        epode.StanzaError if the room refuses (.condition 'conflict',
        'not-authorized', 'registration-required', ...), epode.Error
        (ECANCELED) if the connection ends for good first. epode.Error at
        once: EJID for a malformed room or nick, ESTATE if already in (or
        joining) it. With no asyncio loop running and no callback it
        returns None: watch on_event. Cancelling the future (or a timeout
        around it) stops the join."""
        out = _Outcome(self, callback, "join()", optional=True, report=False)
        jid = self._raw.join(room, nick, password, -1 if history is None else history,
                             -1 if seconds is None else seconds)
        self._joins.setdefault(jid, []).append(out)
        if out.future is not None:
            out.future.add_done_callback(lambda f, jid=jid, out=out: self._join_done(jid, out, f))
        return out.future

    def leave(self, room: str, status: Optional[str] = None) -> bool:
        """Leaves `room` (with an optional status text). True if a 'left'
        event will follow, False if it was dropped at once (not logged in).
        epode.Error (ENOTFOUND) if we are not in it."""
        current = self._raw.room(room)
        pending = self._raw.leave(room, status)
        if not pending and current is not None:
            self._settle(current[0], error=_error(_epode.ECANCELED, "left %s before joining"
                                                  % current[0]))
        return pending

    def send(self, room: str, body: str) -> None:
        """Sends a message to the room (epode.Error ESTATE if not joined
        yet, ENOTFOUND if not in it)."""
        self._raw.send(room, body)

    def send_private(self, room: str, nick: str, body: str) -> None:
        """Sends a private message to occupant `nick` through the room."""
        self._raw.send_private(room, nick, body)

    def set_subject(self, room: str, subject: str) -> None:
        """Asks the room to change its subject (a refusal comes back as an
        'error' event)."""
        self._raw.set_subject(room, subject)

    def set_nick_retry(self, max_tries: int, suffix: Optional[str] = None) -> None:
        """On a nick conflict while joining, join again with `suffix`
        (default '_') appended, up to `max_tries` times (0: fail)."""
        self._raw.set_nick_retry(max_tries, suffix)

    def room(self, jid: str) -> Optional[Room]:
        """A snapshot of the room `jid` (in it or joining), or None."""
        raw = self._raw.room(jid)
        return _room(raw) if raw is not None else None

    @property
    def rooms(self) -> list[Room]:
        """Snapshots of every room we are in or joining, by JID."""
        return [_room(r) for r in self._raw.rooms()]

    def __repr__(self) -> str:
        return "<epode.Muc %d rooms>" % len(self.rooms)
