"""The PEP family of epode.Client: publish-subscribe and personal eventing
(XEP-0060/0163) as ``client.pubsub``, bookmarks (XEP-0402) as
``client.bookmarks``, avatars (XEP-0084, with XEP-0153 hashes in
presence) as ``client.avatar`` and nicknames (XEP-0172) as
``client.nickname``.

All four share one C object, ``epode._epode.Pep`` (reachable as ``.raw``),
made on first use of any of them, before or after connect(): requests
need a logged-in client, bookmarks are fetched at every login (at once
when first used while logged in), and the ``NODE+notify`` features that
make contacts' servers send us their notifications go into
``client.caps`` (made then too), so contacts learn them from our next
presence. The protocol work and its checks (bookmark changes only from
our own account, avatar bytes checked against their SHA-1) are done in C.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

from . import _epode
from ._epode import StanzaError
from ._im import _Helper, _Outcome, _status_error

__all__ = ["Avatar", "Bookmark", "Bookmarks", "Nickname", "PubSub", "PubSubError",
           "PubSubEvent", "PubSubItem"]

NS_BOOKMARKS = "urn:xmpp:bookmarks:1"
NS_AVATAR_METADATA = "urn:xmpp:avatar:metadata"
NS_NICK = "http://jabber.org/protocol/nick"


class PubSubError(StanzaError):
    """A refused pubsub request: ``condition`` is the RFC 6120 one
    ('conflict', 'item-not-found', …), ``pubsub_condition`` the XEP-0060
    pubsub#errors one when the service gave it ('precondition_not_met',
    'unsupported', …; None otherwise)."""

    pubsub_condition: Optional[str]

    def __init__(self, condition: str, text: Optional[str] = None,
                 pubsub_condition: Optional[str] = None) -> None:
        super().__init__(condition, text)
        self.pubsub_condition = pubsub_condition


class PubSubItem(NamedTuple):
    """One item: its id, the publisher the service names (unchecked), and
    its payload (an epode.Stanza, or None)."""
    id: Optional[str]
    publisher: Optional[str]
    payload: Any


class PubSubEvent(NamedTuple):
    """A notification: ``type`` 'published', 'retracted', 'purged' or
    'deleted'; ``from_`` the service (a contact's bare JID for PEP; None:
    our own account); ``node``; ``item`` for published/retracted."""
    type: str
    from_: Optional[str]
    node: str
    item: Optional[PubSubItem]


class Bookmark(NamedTuple):
    """A room the user keeps (XEP-0402)."""
    room: str
    name: Optional[str]
    nick: Optional[str]
    password: Optional[str]
    autojoin: bool


def _raw(client) -> Any:
    """The client's one _epode.Pep, made on first use (with client.caps,
    so +notify reaches our presence)."""
    raw = client.__dict__.get("_im_pep_raw")
    if raw is None:
        client.caps  # made now: NODE+notify goes into our caps ver
        raw = client.__dict__["_im_pep_raw"] = _epode.Pep(client.connection, client.disco.raw)
        raw.on_event = lambda *a: _route(client, "pubsub", "_on_event", *a)
        raw.on_bookmark = lambda *a: _route(client, "bookmarks", "_on_event", *a)
        raw.on_avatar = lambda *a: _route(client, "avatar", "_on_event", *a)
        raw.on_nick = lambda *a: _route(client, "nickname", "_on_event", *a)
    return raw


def _route(client, name: str, method: str, *args) -> None:
    helper = client.__dict__.get("_im_pep_" + name)
    if helper is not None:
        getattr(helper, method)(*args)


def _answer(out: _Outcome, what: str, convert: Optional[Callable[[Any], Any]] = None):
    """The C callback for one request: (status, condition, pubsub_error,
    [text,] extra) -> the future or callback of `out`."""
    def answered(status: int, condition: Optional[str], perr: Optional[str], *rest) -> None:
        text = rest[0] if len(rest) == 2 else None
        extra = rest[-1] if rest else None
        if status == 0 and condition is None:
            out.set(convert(extra) if convert else extra)
        elif status == 0:
            out.set(error=PubSubError(condition, text, perr))
        else:
            out.set(error=_status_error(status, what))
    return answered


def _item(t: Any) -> PubSubItem:
    return PubSubItem(*t)


class _PepHelper(_Helper):
    def __init__(self, client) -> None:
        super().__init__(client, _raw(client))
        self._handlers: list = []

    def _request(self, what: str, start: Callable[[Callable], None], callback,
                 convert: Optional[Callable[[Any], Any]] = None):
        out = _Outcome(self, callback, what, optional=False)
        start(_answer(out, what, convert))
        return out.future

    def remove_handler(self, fn) -> None:
        self._remove(fn, self._handlers)


class PubSub(_PepHelper):
    """Publish-subscribe (XEP-0060) on any service, and PEP (XEP-0163) on
    our own account (``jid=None``).

    ``await pubsub.publish(node, item, id=None, jid=None, options=None)``
    returns the item id (``item``: an epode.Stanza, XML text, or None;
    ``options``: publish-options, e.g. ``{"pubsub#access_model":
    "open"}``); ``await pubsub.fetch(node, jid=None, id=None, max=0)`` a
    list of PubSubItem; ``retract()``, ``subscribe()``, ``unsubscribe()``,
    ``delete_node()``, ``configure()``. Refusals raise PubSubError.
    ``@pubsub.on_event(node=None)`` registers ``fn(event)`` (PubSubEvent);
    ``pubsub.notify(node)`` asks contacts' servers for a node's PEP
    notifications (``NODE+notify`` in our caps)."""

    def __init__(self, client) -> None:
        super().__init__(client)
        self._by_node: list = []

    def _on_event(self, type: str, from_: Optional[str], node: str, item: Any) -> None:
        ev = PubSubEvent(type, from_, node, _item(item) if item is not None else None)
        for want, fn in list(self._by_node):
            if want is None or want == node:
                self._call(fn, ev)

    def on_event(self, node: Optional[str] = None):
        """Decorator: ``fn(event)`` for notifications about ``node``
        (None: every node)."""
        def register(fn: Callable[[PubSubEvent], Any]):
            self._by_node.append((node, fn))
            return fn
        return register

    def remove_handler(self, fn) -> None:
        before = len(self._by_node)
        self._by_node = [(n, f) for n, f in self._by_node if f is not fn]
        if len(self._by_node) == before:
            raise KeyError(fn)

    def notify(self, node: str, on: bool = True) -> None:
        self._raw.notify(node, on)

    def publish(self, node: str, item: Any = None, id: Optional[str] = None,
                jid: Optional[str] = None, options: Optional[dict] = None, *, callback=None):
        return self._request("publish", lambda cb: self._raw.publish(node, item, id, jid, options, cb),
                             callback)

    def fetch(self, node: str, jid: Optional[str] = None, id: Optional[str] = None,
              max: int = 0, *, callback=None):
        return self._request("fetch", lambda cb: self._raw.fetch(node, jid, id, max, cb), callback,
                             lambda items: [_item(t) for t in items or ()])

    def retract(self, node: str, id: str, jid: Optional[str] = None, notify: bool = True, *,
                callback=None):
        return self._request("retract", lambda cb: self._raw.retract(node, id, jid, notify, cb),
                             callback, lambda _x: None)

    def subscribe(self, jid: str, node: str, *, callback=None):
        return self._request("subscribe", lambda cb: self._raw.subscribe(jid, node, True, None, cb),
                             callback, lambda t: tuple(t) if t else (None, None))

    def unsubscribe(self, jid: str, node: str, subid: Optional[str] = None, *, callback=None):
        return self._request("unsubscribe",
                             lambda cb: self._raw.subscribe(jid, node, False, subid, cb),
                             callback, lambda _x: None)

    def delete_node(self, node: str, jid: Optional[str] = None, *, callback=None):
        return self._request("delete_node", lambda cb: self._raw.delete_node(node, jid, cb),
                             callback, lambda _x: None)

    def configure(self, node: str, options: dict, jid: Optional[str] = None, *, callback=None):
        return self._request("configure", lambda cb: self._raw.configure(node, options, jid, cb),
                             callback, lambda _x: None)


class Bookmarks(_PepHelper):
    """The user's rooms (XEP-0402), kept on their account, fetched at
    every login and kept current by notifications from our own account.

    ``bookmarks.autojoin(nick=None)`` joins the autojoin rooms through
    ``client.muc``. ``await bookmarks.list()`` fetches and returns a list of Bookmark;
    ``await bookmarks.add(room, autojoin=True, nick=None, name=None,
    password=None)``, ``await bookmarks.remove(room)``; ``bookmarks.items``
    is the local copy; ``@bookmarks.on_change`` registers ``fn(event,
    bookmark)``: 'loaded' (bookmark None), 'added', 'updated', 'removed',
    'fetch_failed'."""

    def __init__(self, client) -> None:
        super().__init__(client)
        self._raw.bookmarks_start()

    def _on_event(self, event: str, bm: Any) -> None:
        self._dispatch(self._handlers, event, Bookmark(*bm) if bm is not None else None)

    def on_change(self, fn: Callable[[str, Optional[Bookmark]], Any]):
        self._handlers.append(fn)
        return fn

    def autojoin(self, enabled: bool = True, nick: Optional[str] = None) -> None:
        """Joins autojoin rooms through ``client.muc``: every autojoin
        bookmark when the list is loaded (at every login) and each one
        that arrives later; the nick is the bookmark's, else ``nick``,
        else our JID's local part. ``enabled=False`` stops it."""
        self._raw.bookmarks_autojoin(self._client.muc.raw if enabled else None, nick)

    @property
    def items(self) -> list:
        return [Bookmark(*t) for t in self._raw.bookmarks_list()]

    @property
    def received(self) -> bool:
        return bool(self._raw.bookmarks_received())

    def list(self, *, callback=None):
        return self._request("bookmarks", lambda cb: self._raw.bookmarks_fetch(cb), callback,
                             lambda _x: self.items)

    def add(self, room: str, autojoin: bool = True, nick: Optional[str] = None,
            name: Optional[str] = None, password: Optional[str] = None, *, callback=None):
        return self._request("bookmarks",
                             lambda cb: self._raw.bookmarks_add(room, name, autojoin, nick,
                                                                password, cb),
                             callback, lambda _x: None)

    def remove(self, room: str, *, callback=None):
        return self._request("bookmarks", lambda cb: self._raw.bookmarks_remove(room, cb),
                             callback, lambda _x: None)


class Avatar(_PepHelper):
    """User avatars (XEP-0084) and their hashes in presence (XEP-0153).

    ``await avatar.publish(png_bytes, type="image/png", width=0,
    height=0)`` returns the avatar's id (its SHA-1, hex); our presences
    then carry it. ``await avatar.fetch(jid)`` returns the bytes (checked
    against their SHA-1) or None when ``jid`` has no avatar;
    ``avatar.disable()``. ``@avatar.on_change`` registers ``fn(jid, id,
    source)``: ``id`` '' for no avatar, None when unknown; source 'pep' or
    'vcard'."""

    def __init__(self, client) -> None:
        super().__init__(client)
        self._raw.avatar_start()

    def _on_event(self, jid: str, id: Optional[str], type: Optional[str], source: str) -> None:
        self._dispatch(self._handlers, jid, id, source)

    def on_change(self, fn: Callable[[str, Optional[str], str], Any]):
        self._handlers.append(fn)
        return fn

    def publish(self, data: bytes, type: str = "image/png", width: int = 0, height: int = 0, *,
                callback=None):
        return self._request("avatar", lambda cb: self._raw.avatar_publish(bytes(data), type, width,
                                                                            height, cb),
                             callback)

    def disable(self, *, callback=None):
        return self._request("avatar", lambda cb: self._raw.avatar_disable(cb), callback,
                             lambda _x: None)

    def fetch(self, jid: Optional[str] = None, *, callback=None):
        return self._request("avatar fetch", lambda cb: self._raw.avatar_fetch(jid, cb), callback,
                             lambda t: t[0] if t else None)

    @property
    def hash(self) -> Optional[str]:
        """The XEP-0153 hash our presences carry (None: none added)."""
        return self._raw.avatar_vcard_hash()  # type: ignore[no-any-return]

    @hash.setter
    def hash(self, value: Optional[str]) -> None:
        self._raw.avatar_set_vcard_hash(value)


class Nickname(_PepHelper):
    """User nicknames (XEP-0172): ``await nickname.set(nick)`` publishes
    ours (None clears it) and adds it to our subscription requests;
    ``nickname.own`` is it; ``@nickname.on_change`` registers ``fn(jid,
    nick, source)`` for nicks learnt ('pep', 'presence', 'message') — a
    claim of the sender, to show beside the JID, never instead of it."""

    def __init__(self, client) -> None:
        super().__init__(client)
        self._raw.nickname_start()

    def _on_event(self, jid: str, nick: str, source: str) -> None:
        self._dispatch(self._handlers, jid, nick, source)

    def on_change(self, fn: Callable[[str, str, str], Any]):
        self._handlers.append(fn)
        return fn

    @property
    def own(self) -> Optional[str]:
        return self._raw.nickname_own()  # type: ignore[no-any-return]

    def set(self, nick: Optional[str], *, callback=None):
        return self._request("nickname", lambda cb: self._raw.nickname_set(nick, cb), callback,
                             lambda _x: None)

