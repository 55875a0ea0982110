# Type stubs for the epode package (the C extension epode._epode and the
# pure-Python layer around it).
from builtins import TimeoutError as _BuiltinTimeoutError
import datetime as _datetime
import os as _os
from asyncio import Future
from typing import (Any, Awaitable, Callable, Iterable, Iterator, Mapping, NamedTuple, Optional,
                    Protocol, TypeVar, Union, overload)

__version__: str
error_codes: dict[str, int]
ENOMEM: int
EINVAL: int
EJID: int
EXML: int
ELIMIT: int
ENOTFOUND: int
ESTATE: int
ERANDOM: int
ERANGE: int
EAGAIN: int
ENET: int
ETLS: int
ECERT: int
ENOTLS: int
EAUTH: int
ENOMECH: int
EDNS: int
ETIMEDOUT: int
ECLOSED: int
ESTREAM: int
EPROTOCOL: int
ECANCELED: int
EEOF: int
EBUSY: int
ENOTSUP: int
EREFUSED: int
EHTTP: int

def strerror(code: int) -> str: ...
def default_context() -> Context: ...
XML: int
LOG_ERROR: int
LOG_WARN: int
LOG_INFO: int
LOG_DEBUG: int
LOG_XML: int
def log_to_logging(ctx: Context, name: str = ...) -> None: ...

class Error(Exception):
    code: Optional[int]
    name: Optional[str]
    condition: Optional[str]
    text: Optional[str]
    reason: Optional[str]
    redirect: Optional[str]

class StanzaError(Error):
    type: Optional[str]
    stanza: Optional[Stanza]
    def __init__(self, condition: str = ..., text: Optional[str] = ...,
                 type: Optional[str] = ..., stanza: Optional[Stanza] = ...) -> None: ...

class TimeoutError(Error, _BuiltinTimeoutError): ...

_XML = Union[str, bytes]

class Stanza:
    name: str
    ns: Optional[str]
    text: str
    attrs: dict[str, str]
    parent: Optional[Stanza]
    root: Stanza
    children: list[Stanza]
    stanza: Stanza
    error: Optional[StanzaError]
    id: Optional[str]
    to: Optional[str]
    from_: Optional[str]
    def __init__(self, name: str, ns: Optional[str] = ..., attrs: Optional[dict[str, str]] = ...,
                 text: Optional[str] = ...) -> None: ...
    @classmethod
    def parse(cls, xml: _XML) -> Stanza: ...
    def find(self, name: Optional[str] = ..., ns: Optional[str] = ...) -> Optional[Stanza]: ...
    def find_all(self, name: Optional[str] = ..., ns: Optional[str] = ...) -> list[Stanza]: ...
    def find_text(self, name: str, ns: Optional[str] = ...) -> Optional[str]: ...
    def get(self, name: str, default: Any = ...) -> Any: ...
    def add(self, child: Union[str, Stanza], ns: Optional[str] = ...,
            attrs: Optional[dict[str, str]] = ..., text: Optional[str] = ...) -> Stanza: ...
    def append_text(self, text: str) -> None: ...
    def remove(self) -> None: ...
    def copy(self) -> Stanza: ...
    def to_xml(self, *, in_stream: bool = ..., one_line: bool = ...) -> str: ...
    def reply(self, body: Optional[str] = ...) -> Stanza: ...
    def error_reply(self, condition: str, text: Optional[str] = ..., type: Optional[str] = ...,
                    include_original: bool = ...) -> Stanza: ...
    def __getitem__(self, name: str) -> str: ...
    def __setitem__(self, name: str, value: str) -> None: ...
    def __delitem__(self, name: str) -> None: ...
    def __iter__(self) -> Iterator[Stanza]: ...
    def __len__(self) -> int: ...

class Message(Stanza):
    type: str
    body: Optional[str]
    subject: Optional[str]
    thread: Optional[str]
    from_bare: Optional[str]
    # today's message features (epode/_modern.py, msgext.h)
    timestamp: Optional[_datetime.datetime]
    delay_from: Optional[str]
    archive_id: Optional[str]
    replace_id: Optional[str]
    retract_id: Optional[str]
    retracted: Optional[str]
    reactions_to: Optional[str]
    reactions: tuple[str, ...]
    reply_to_id: Optional[str]
    reply_to: Optional[str]
    reply_body: Optional[str]
    marker: Optional[str]
    marker_id: Optional[str]
    markable: bool
    hints: frozenset[str]
    occupant_id: Optional[str]
    origin_id: Optional[str]
    ref_id: Optional[str]
    def __init__(self, to: Optional[str] = ..., body: Optional[str] = ...,
                 type: Optional[str] = ..., id: Optional[str] = ...) -> None: ...
    def same_sender(self, original_from: str, occupant_id: Optional[str] = ...,
                    mode: Optional[str] = ...) -> bool: ...
    def set_replace(self, id: str) -> Message: ...
    def set_reply(self, id: str, to: Optional[str] = ...) -> Message: ...
    def add_markable(self) -> Message: ...
    def add_hints(self, *names: str) -> Message: ...

class Presence(Stanza):
    type: str
    show: Optional[str]
    status: Optional[str]
    priority: int
    from_bare: Optional[str]
    def __init__(self, to: Optional[str] = ..., type: Optional[str] = ...,
                 show: Optional[str] = ..., status: Optional[str] = ...,
                 priority: Optional[int] = ...) -> None: ...

class Iq(Stanza):
    type: str
    def __init__(self, type: str = ..., to: Optional[str] = ..., id: Optional[str] = ...) -> None: ...

class Context:
    timeout: Optional[float]
    driver: Any
    running: bool
    def __init__(self) -> None: ...
    def set_driver(self, driver: Any) -> None: ...
    def set_log(self, fn: Optional[Callable[[int, str, str], Any]],
                max_level: int = ...) -> None: ...
    def process(self, fd: int, events: int) -> int: ...
    def run(self, timeout: Optional[float] = ...) -> bool: ...
    def stop(self) -> None: ...
    def wakeup(self) -> None: ...
    def watched(self) -> dict[int, int]: ...

class Connection:
    bound_jid: Optional[str]
    ready: bool
    sm_enabled: bool
    will_reconnect: bool
    closing: bool
    reason: Optional[str]
    last_error: Optional[Error]
    security: Optional[str]
    pending_bytes: int
    draining: bool
    features: Optional[Stanza]
    context: Context
    on_event: Optional[Callable[[str], Any]]
    on_error: Optional[Callable[[BaseException], Any]]
    on_ack: Optional[Callable[[bool, Optional[str], str], Any]]
    spawn: Optional[Callable[[Awaitable[Any], Optional[Stanza]], Any]]
    def __init__(self, context: Context, jid: str, password: Optional[str] = ...) -> None: ...
    def configure(self, **options: Any) -> None: ...
    def set_proxy(self, url: Optional[str]) -> None:
        """'socks5://[user:password@]host[:port]' or 'http://…' (HTTP
        CONNECT); None removes it. ValueError for a malformed URL."""
    def set_websocket(self, url: Optional[str]) -> None:
        """'wss://host[:port][/path]' or 'ws://…' (RFC 7395) instead of TCP;
        "" goes back to TCP. ValueError for a malformed URL;
        None finds the URL in the domain's host-meta (XEP-0156) at the next
        connect. NotImplementedError without WebSocket support."""
    def set_bosh(self, url: Optional[str]) -> None:
        """'https://host[:port][/path]' or 'http://…' (loopback): XMPP over
        BOSH (XEP-0124/0206) instead of TCP; replaces a WebSocket URL and
        vice versa; "" goes back to TCP; None finds the URL in the domain's
        host-meta (XEP-0156) at the next connect. ValueError for a malformed
        URL; NotImplementedError without BOSH support (libcurl)."""
    def connect(self) -> None: ...
    def close(self, status: Optional[str] = ...) -> bool: ...
    def send(self, stanza: Union[Stanza, _XML]) -> None: ...
    def send_message(self, to: str, body: str, type: str = ..., *, id: Optional[str] = ...) -> str: ...
    def send_presence(self, show: Optional[str] = ..., status: Optional[str] = ...,
                      priority: int = ..., to: Optional[str] = ...) -> None: ...
    def add_handler(self, callback: Callable[[Stanza], Any], name: Optional[str] = ...,
                    ns: Optional[str] = ..., type: Optional[str] = ...) -> int: ...
    def remove_handler(self, id: int) -> None: ...
    def send_iq(self, iq: Union[Stanza, _XML], callback: Callable[[Optional[Stanza], int], Any],
                timeout: Optional[float] = ...) -> int: ...
    def set_send_limits(self, max_unacked_stanzas: int = ...,
                        max_pending_bytes: int = ...) -> None: ...
    def set_drain_threshold(self, low_water: int) -> None: ...

_F = TypeVar("_F", bound=Callable[..., Any])
_Handler = Callable[[Any], Any]

class FastTokenStore(Protocol):
    """What Client(fast_token_store=...) takes: load(jid) returns the
    stored token as {'jid', 'mechanism', 'token', 'expiry'} (expiry may
    be None) or None; store(jid, token) keeps a new one, or forgets the
    stored one when token is None (the server refused it). The server
    files a token under the SASL2 user-agent id: keep
    client.user_agent_id with it and pass it back as user_agent= (a
    store with a user_agent_id attribute, like FastTokenFile, gets this
    done by Client; a user_agent= that differs from it wins, and the
    token kept under the other id is dropped)."""
    def load(self, jid: str) -> Optional[Mapping[str, Optional[str]]]: ...
    def store(self, jid: str, token: Optional[Mapping[str, Optional[str]]]) -> None: ...

class FastTokenFile:
    """A FastTokenStore in one file (epode-send --fast-token-file's
    format, mode 0600, replaced atomically), with the user-agent id.
    store() raises ValueError, the file as it was, for a value with a
    control character (a newline would add lines to the file)."""
    path: str
    def __init__(self, path: str) -> None: ...
    @property
    def user_agent_id(self) -> Optional[str]: ...
    @user_agent_id.setter
    def user_agent_id(self, value: str) -> None: ...
    def load(self, jid: str) -> Optional[dict[str, Optional[str]]]: ...
    def store(self, jid: str, token: Optional[Mapping[str, Optional[str]]]) -> None: ...

class Client:
    jid: str
    caps_node: str
    roster: Roster
    presence: PresenceTracker
    disco: Disco
    caps: Caps
    muc: Muc
    blocking: Blocking
    mam: Mam
    commands: Commands
    pubsub: PubSub
    bookmarks: Bookmarks
    avatar: Avatar
    nickname: Nickname
    bound_jid: Optional[str]
    is_ready: bool
    connection: Connection
    last_error: Optional[Error]
    def __init__(self, jid: str, password: Optional[str], server: Optional[str] = ...,
                 port: Optional[int] = ..., ca_file: Optional[str] = ...,
                 direct_tls: bool = ..., *, context: Optional[Context] = ...,
                 tls: Optional[str] = ..., verify: bool = ..., mechanisms: Optional[str] = ...,
                 stream_management: bool = ..., reconnect: bool = ...,
                 keepalive: Optional[float] = ..., connect_timeout: Optional[float] = ...,
                 login_timeout: Optional[float] = ..., catch_up: bool = ...,
                 resend_unacked: bool = ..., sasl2: bool = ...,
                 user_agent: Optional[str] = ...,
                 fast_token_store: Optional[FastTokenStore] = ...,
                 proxy: Optional[str] = ..., websocket: Optional[str] = ...,
                 bosh: Optional[str] = ...) -> None:
        """sasl2: SASL2 (XEP-0388) with Bind2 when the server offers it
        (default True). user_agent: a stable UUID for SASL2 (default: a
        FastTokenFile's, else one epode makes: see user_agent_id).
        fast_token_store: keeps FAST tokens (XEP-0484) across runs;
        without one they live in the connection's memory. Python strings
        cannot be wiped: a store holds its token as long as it lives.
        load() may return any Mapping (its values are read once and held
        while epode copies them). Tokens are used and asked for only over
        TLS whose certificate verified (never with verify=False).
        proxy: 'socks5://[user:password@]host[:port]' or 'http://…' (HTTP
        CONNECT): no DNS query for the domain; ValueError if malformed.
        websocket: 'wss://host[:port]/path' or 'ws://…' (loopback): XMPP
        over WebSocket (RFC 7395) instead of TCP. bosh: 'https://host[:port]/path'
        or 'http://…' (loopback): XMPP over BOSH (XEP-0124/0206) instead of
        TCP; ValueError with websocket= too."""
    @property
    def user_agent_id(self) -> str: ...
    def send(self, stanza: Union[Stanza, _XML]) -> None: ...
    def send_message(self, to: str, body: str, type: str = ..., *, id: Optional[str] = ...) -> str: ...
    def send_presence(self, show: Optional[str] = ..., status: Optional[str] = ...,
                      priority: int = ..., to: Optional[str] = ...) -> None: ...
    @overload
    def on_message(self, fn: _F) -> _F: ...
    @overload
    def on_message(self, fn: None = ..., *, type: Optional[str] = ...,
                   ns: Optional[str] = ...) -> Callable[[_F], _F]: ...
    @overload
    def on_presence(self, fn: _F) -> _F: ...
    @overload
    def on_presence(self, fn: None = ..., *, type: Optional[str] = ...,
                    ns: Optional[str] = ...) -> Callable[[_F], _F]: ...
    @overload
    def on_iq(self, fn: _F) -> _F: ...
    @overload
    def on_iq(self, fn: None = ..., *, ns: Optional[str] = ...,
              type: Optional[str] = ...) -> Callable[[_F], _F]: ...
    def on_stanza(self, fn: Optional[_F] = ..., *, name: Optional[str] = ...,
                  ns: Optional[str] = ..., type: Optional[str] = ...) -> Any: ...
    def on_event(self, fn: _F) -> _F: ...
    def on_error(self, fn: _F) -> _F: ...
    # Handlers are added (never replaced) and run in the order added, every
    # matching one whatever the others return; add_handler() returns an id.
    # A stanza handler returns True (handled), None (pass), or an IQ reply.
    def add_handler(self, kind: str, fn: Callable[..., Any], *, name: Optional[str] = ...,
                    ns: Optional[str] = ..., type: Optional[str] = ...) -> int: ...
    def remove_handler(self, handler: Union[int, Callable[..., Any]]) -> None: ...
    async def connect(self, timeout: Optional[float] = ...) -> None: ...
    async def disconnect(self, status: Optional[str] = ...) -> None: ...
    async def wait_disconnected(self) -> None: ...
    async def drain(self) -> None: ...
    async def __aenter__(self) -> Client: ...
    async def __aexit__(self, *exc_info: Any) -> None: ...
    async def iq(self, iq: Union[Stanza, _XML], timeout: float = ...) -> Iq: ...
    async def change_password(self, new_password: str, old_password: Optional[str] = ...,
                              timeout: float = ...) -> None: ...
    async def unregister(self, timeout: float = ...) -> None: ...
    def run(self, timeout: Optional[float] = ...) -> None: ...
    def stop(self, status: Optional[str] = ...) -> None: ...
    def set_active(self, active: bool) -> None: ...
    async def ping(self, jid: Optional[str] = ..., timeout: float = ...) -> float: ...
    def set_version(self, name: str, version: str, os: Optional[str] = ...) -> None: ...
    async def version(self, jid: Optional[str] = ..., timeout: float = ...
                      ) -> tuple[Optional[str], Optional[str], Optional[str]]: ...
    def command(self, node: str, name: str, *,
                allow: _CommandAllow = ...) -> Callable[[_CommandFn], _CommandFn]: ...
    @property
    def uploader(self) -> Uploader: ...
    async def upload(self, source: _UploadSource, filename: Optional[str] = ...,
                     content_type: Optional[str] = ..., *,
                     progress: Optional[Callable[[int, int], Any]] = ...) -> str: ...
    def send_url(self, to: str, url: str, type: str = ...) -> None: ...
class Component(Client):
    domain: str
    def __init__(self, domain: str, secret: str, server: str, port: Optional[int] = ..., *,
                 context: Optional[Context] = ..., tls: Optional[str] = ...,
                 ca_file: Optional[str] = ..., verify: bool = ..., reconnect: bool = ...,
                 keepalive: Optional[float] = ..., connect_timeout: Optional[float] = ...,
                 login_timeout: Optional[float] = ..., proxy: Optional[str] = ...) -> None:
        """proxy: as for Client; a component in clear through a proxy needs
        tls='optional' (epode cannot tell the server is on loopback)."""
    def send_message(self, to: str, body: str, type: str = ..., *, id: Optional[str] = ...,
                     from_: Optional[str] = ...) -> str: ...
    def send_presence(self, show: Optional[str] = ..., status: Optional[str] = ...,
                      priority: int = ..., to: Optional[str] = ..., *,
                      from_: Optional[str] = ..., type: Optional[str] = ...) -> None: ...

# ---- in-band registration (epode/_register.py) -------------------------------

class FormField(NamedTuple):
    var: Optional[str]
    type: str
    label: Optional[str]
    required: bool
    values: list[str]
    options: list[tuple[Optional[str], str]]
    media: Optional[Stanza]
    @property
    def value(self) -> Optional[str]: ...

class RegistrationForm:
    fields: list[FormField]
    title: Optional[str]
    instructions: Optional[str]
    oob_url: Optional[str]
    registered: bool
    data_form: bool
    answer: Optional[Stanza]
    form_type: Optional[str]
    def field(self, var: str) -> Optional[FormField]: ...
    def missing(self) -> list[str]: ...
    def __contains__(self, var: object) -> bool: ...
    def __getitem__(self, var: str) -> Optional[str]: ...
    def __setitem__(self, var: str, value: Union[str, list[str], None]) -> None: ...

async def register(jid: str, password: str, server: Optional[str] = ...,
                   port: Optional[int] = ..., ca_file: Optional[str] = ...,
                   direct_tls: bool = ..., *,
                   fill: Optional[Callable[[RegistrationForm], Optional[Awaitable[None]]]] = ...,
                   timeout: float = ..., allow_cleartext: bool = ...,
                   login: bool = ..., context: Optional[Context] = ...,
                   tls: Optional[str] = ..., verify: bool = ...,
                   connect_timeout: Optional[float] = ...,
                   login_timeout: Optional[float] = ...) -> Optional[Client]: ...

# ---- the IM layer (epode/_im.py) -------------------------------------------

class RosterItem(NamedTuple):
    jid: str
    name: Optional[str]
    subscription: str
    ask: bool
    groups: tuple[str, ...]

class PresenceInfo(NamedTuple):
    jid: str
    resource: Optional[str]
    show: str
    status: Optional[str]
    priority: int
    bare: str
    error: Optional[str]
    stanza: Optional[Presence]

class Identity(NamedTuple):
    category: str
    type: str
    name: Optional[str]
    lang: Optional[str]

class DiscoField(NamedTuple):
    var: Optional[str]
    type: Optional[str]
    values: tuple[str, ...]

class DiscoForm(NamedTuple):
    form_type: Optional[str]
    type: Optional[str]
    fields: list[DiscoField]
    def get(self, var: str) -> Optional[tuple[str, ...]]: ...

class DiscoInfo(NamedTuple):
    identities: list[Identity]
    features: frozenset[str]
    forms: list[DiscoForm]
    node: Optional[str]
    def has_feature(self, var: str) -> bool: ...
    def has_identity(self, category: str, type: Optional[str] = ...) -> bool: ...

class DiscoItem(NamedTuple):
    jid: str
    node: Optional[str]
    name: Optional[str]

class Occupant(NamedTuple):
    nick: str
    jid: Optional[str]
    role: str
    affiliation: str
    show: Optional[str]
    status: Optional[str]
    is_self: bool

class Room(NamedTuple):
    jid: str
    nick: str
    joined: bool
    subject: Optional[str]
    occupants: list[Occupant]
    def occupant(self, nick: str) -> Optional[Occupant]: ...

class MucEvent(NamedTuple):
    type: str
    room: str
    nick: Optional[str]
    occupant: Optional[Occupant]
    body: Optional[str]
    subject: Optional[str]
    is_self: bool
    history: bool
    created: bool
    condition: Optional[str]
    text: Optional[str]
    fatal: bool
    retrying: bool
    codes: tuple[int, ...]
    stanza: Optional[Stanza]

_Done = Callable[[Any, Optional[BaseException]], Any]
# The requests below (fetch, add, remove, info, items, join) return a
# future to await when called without a callback inside a running asyncio
# loop, and None with callback=fn(result, error). Outside a running loop
# a request needs a callback (without one most raise RuntimeError).

class _IMHelper:
    raw: Any
    client: Client

class Roster(_IMHelper):
    version: Optional[str]
    received: bool
    # fn(event, item): 'added', 'updated', 'removed' (item: the RosterItem),
    # 'received' or 'fetch_failed' (item None)
    def on_change(self, fn: _F) -> _F: ...
    def remove_handler(self, fn: Callable[..., Any]) -> None: ...
    @overload
    def fetch(self, *, callback: None = ...) -> Future[Roster]: ...
    @overload
    def fetch(self, *, callback: _Done) -> None: ...
    @overload
    def add(self, jid: str, name: Optional[str] = ..., groups: Union[str, Iterable[str]] = ...,
            *, callback: None = ...) -> Future[None]: ...
    @overload
    def add(self, jid: str, name: Optional[str] = ..., groups: Union[str, Iterable[str]] = ...,
            *, callback: _Done) -> None: ...
    @overload
    def remove(self, jid: str, *, callback: None = ...) -> Future[None]: ...
    @overload
    def remove(self, jid: str, *, callback: _Done) -> None: ...
    def get(self, jid: str, default: Any = ...) -> Optional[RosterItem]: ...
    def __getitem__(self, jid: str) -> RosterItem: ...
    def __contains__(self, jid: object) -> bool: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[RosterItem]: ...

class PresenceTracker(_IMHelper):
    auto_accept: Union[bool, str]
    # fn(change, info): 'available', 'unavailable', ... (info.error for 'error')
    def on_change(self, fn: _F) -> _F: ...
    def on_subscription(self, fn: _F) -> _F: ...
    def remove_handler(self, fn: Callable[..., Any]) -> None: ...
    def get(self, jid: str) -> Optional[PresenceInfo]: ...
    def best(self, jid: str) -> Optional[PresenceInfo]: ...
    def resources(self, jid: str) -> list[PresenceInfo]: ...
    def contacts(self) -> list[str]: ...
    def is_online(self, jid: str) -> bool: ...
    def subscribe(self, jid: str, status: Optional[str] = ...) -> None: ...
    def approve(self, jid: str) -> None: ...
    def deny(self, jid: str) -> None: ...
    def cancel(self, jid: str) -> None: ...
    def unsubscribe(self, jid: str) -> None: ...

class Disco(_IMHelper):
    def add_identity(self, category: str, type: str, name: Optional[str] = ...,
                     lang: Optional[str] = ..., node: Optional[str] = ...) -> None: ...
    def remove_identity(self, category: str, type: str, lang: Optional[str] = ...,
                        node: Optional[str] = ...) -> None: ...
    def add_feature(self, var: str, node: Optional[str] = ...) -> None: ...
    def remove_feature(self, var: str, node: Optional[str] = ...) -> None: ...
    def add_item(self, jid: str, item_node: Optional[str] = ..., name: Optional[str] = ...,
                 *, node: Optional[str] = ...) -> None: ...
    def remove_item(self, jid: str, item_node: Optional[str] = ..., *,
                    node: Optional[str] = ...) -> None: ...
    def add_form(self, form: Union[Stanza, _XML], node: Optional[str] = ...) -> None: ...
    def remove_form(self, form_type: str, node: Optional[str] = ...) -> None: ...
    def local_info(self, node: Optional[str] = ...) -> DiscoInfo: ...
    @overload
    def info(self, jid: Optional[str] = ..., node: Optional[str] = ..., *,
             timeout: Optional[float] = ..., callback: None = ...) -> Future[DiscoInfo]: ...
    @overload
    def info(self, jid: Optional[str] = ..., node: Optional[str] = ..., *,
             timeout: Optional[float] = ..., callback: _Done) -> None: ...
    @overload
    def items(self, jid: Optional[str] = ..., node: Optional[str] = ..., *,
              timeout: Optional[float] = ..., callback: None = ...) -> Future[list[DiscoItem]]: ...
    @overload
    def items(self, jid: Optional[str] = ..., node: Optional[str] = ..., *,
              timeout: Optional[float] = ..., callback: _Done) -> None: ...

class Caps(_IMHelper):
    ver: Optional[str]
    node: str
    disco: Disco
    cache_count: int
    # fn(jid, info): what is known of the full JID changed (info None: nothing now)
    def on_change(self, fn: _F) -> _F: ...
    def remove_handler(self, fn: Callable[..., Any]) -> None: ...
    def supports(self, jid: str, feature: str) -> Optional[bool]: ...
    def info(self, jid: str) -> Optional[DiscoInfo]: ...

class Muc(_IMHelper):
    rooms: list[Room]
    def on_event(self, fn: _F) -> _F: ...
    def on_message(self, fn: _F) -> _F: ...
    def on_private(self, fn: _F) -> _F: ...
    def remove_handler(self, fn: Callable[..., Any]) -> None: ...
    @overload
    def join(self, room: str, nick: str, password: Optional[str] = ..., *,
             history: Optional[int] = ..., seconds: Optional[int] = ...,
             callback: None = ...) -> Future[Room]: ...
    @overload
    def join(self, room: str, nick: str, password: Optional[str] = ..., *,
             history: Optional[int] = ..., seconds: Optional[int] = ...,
             callback: _Done) -> None: ...
    def leave(self, room: str, status: Optional[str] = ...) -> bool: ...
    def send(self, room: str, body: str) -> None: ...
    def send_private(self, room: str, nick: str, body: str) -> None: ...
    def set_subject(self, room: str, subject: str) -> None: ...
    def set_nick_retry(self, max_tries: int, suffix: Optional[str] = ...) -> None: ...
    def room(self, jid: str) -> Optional[Room]: ...


# ---- the modern IM layer (epode/_modern.py) -----------------------------------

_Time = Union[None, _datetime.datetime, float, int, str]

def correction(to: str, body: str, replace_id: str, type: str = ...) -> Message: ...
def retraction(to: str, id: str, type: str = ...) -> Message: ...
def reactions(to: str, id: str, emojis: Iterable[str], type: str = ...) -> Message: ...
def reply(to: str, body: str, reply_id: str, *, reply_to: Optional[str] = ...,
          quote: Optional[str] = ..., type: str = ...) -> Message: ...
def marker(to: str, id: str, marker: str = ..., type: str = ...,
           thread: Optional[str] = ...) -> Message: ...

class Blocking(_IMHelper):
    blocked: tuple[str, ...]
    received: bool
    # fn(event, jids): 'loaded', 'blocked', 'unblocked', 'unblocked_all', 'limit'
    def on_change(self, fn: _F) -> _F: ...
    def remove_handler(self, fn: Callable[..., Any]) -> None: ...
    def block(self, jids: Union[str, Iterable[str]], *, callback: Optional[_Done] = ...) -> Any: ...
    def unblock(self, jids: Union[str, Iterable[str]], *,
                callback: Optional[_Done] = ...) -> Any: ...
    def unblock_all(self, *, callback: Optional[_Done] = ...) -> Any: ...
    def list(self, *, callback: Optional[_Done] = ...) -> Any: ...
    def is_blocked(self, jid: str) -> bool: ...
    def __contains__(self, jid: object) -> bool: ...

class Page(NamedTuple):
    messages: list[Message]
    first: Optional[str]
    last: Optional[str]
    complete: bool
    total: Optional[int]

class Mam(_IMHelper):
    def page(self, with_: Optional[str] = ..., start: _Time = ..., end: _Time = ...,
             max: int = ..., *, after: Optional[str] = ..., before: Optional[str] = ...,
             archive: Optional[str] = ..., callback: Optional[_Done] = ...) -> Any: ...
    async def fetch(self, with_: Optional[str] = ..., start: _Time = ..., end: _Time = ...,
                    max: int = ..., *, archive: Optional[str] = ..., after: Optional[str] = ...,
                    before: Optional[str] = ..., page_size: int = ...) -> list[Message]: ...
    def catch_up(self, last_id: Optional[str], page_size: int = ..., *,
                 callback: Optional[_Done] = ...) -> Any: ...
    last_id: Optional[str]

# ---- ad-hoc commands (XEP-0050) and data forms (XEP-0004): epode/_commands.py ----

class Field:
    var: Optional[str]
    type: str
    label: Optional[str]
    desc: Optional[str]
    required: bool
    values: list[str]
    options: list[tuple[Optional[str], str]]
    value: Optional[str]
    def __init__(self, var: Optional[str], type: str = ..., label: Optional[str] = ...,
                 desc: Optional[str] = ..., required: bool = ..., values: Iterable[str] = ...,
                 options: Iterable[tuple[Optional[str], str]] = ...) -> None: ...

class Form:
    type: str
    title: Optional[str]
    instructions: list[str]
    fields: list[Field]
    def __init__(self, type: str = ..., *, title: Optional[str] = ...,
                 instructions: Union[None, str, Iterable[str]] = ...,
                 fields: Iterable[Field] = ...) -> None: ...
    def add(self, var: Optional[str], type: str = ..., *, label: Optional[str] = ...,
            value: Any = ..., values: Iterable[Any] = ..., required: bool = ...,
            desc: Optional[str] = ...,
            options: Iterable[Union[str, tuple[Optional[str], str]]] = ...) -> Field: ...
    def field(self, var: str) -> Optional[Field]: ...
    def __getitem__(self, var: str) -> Optional[str]: ...
    def get(self, var: str, default: Optional[str] = ...) -> Optional[str]: ...
    def __contains__(self, var: object) -> bool: ...
    def submit(self, **values: Any) -> Form: ...

class Note(NamedTuple):
    type: str
    text: str

class CommandItem(NamedTuple):
    jid: str
    node: str
    name: Optional[str]

class CommandError(StanzaError):
    specific: Optional[str]
    def __init__(self, condition: str = ..., specific: Optional[str] = ...,
                 text: Optional[str] = ...) -> None: ...

class CommandResult:
    jid: str
    node: str
    session_id: Optional[str]
    status: str
    notes: list[Note]
    form: Optional[Form]
    actions: tuple[str, ...]
    default_action: Optional[str]
    completed: bool
    # each returns a future of the next CommandResult (see _Done above)
    def next(self, form: Optional[Form] = ..., *, callback: Optional[_Done] = ...) -> Any: ...
    def prev(self, *, callback: Optional[_Done] = ...) -> Any: ...
    def complete(self, form: Optional[Form] = ..., *,
                 callback: Optional[_Done] = ...) -> Any: ...
    def proceed(self, form: Optional[Form] = ..., *, callback: Optional[_Done] = ...) -> Any: ...
    def cancel(self, *, callback: Optional[_Done] = ...) -> Any: ...

class CommandReply(NamedTuple):
    status: str
    form: Optional[Form]
    notes: tuple[Note, ...]
    actions: tuple[str, ...]
    default: Optional[str]

_NoteArg = Union[str, tuple[str, str]]

class CommandSession:
    node: str
    session_id: str
    requester: str
    stage: int
    action: str
    form: Optional[Form]
    data: dict[str, Any]
    def ask(self, form: Form, *, actions: Iterable[str] = ..., default: Optional[str] = ...,
            notes: Iterable[_NoteArg] = ...) -> CommandReply: ...
    def complete(self, form: Optional[Form] = ..., *,
                 notes: Iterable[_NoteArg] = ...) -> CommandReply: ...
    def cancel(self, *, notes: Iterable[_NoteArg] = ...) -> CommandReply: ...

_CommandAnswer = Union[CommandReply, Form, str, None]
_CommandFn = TypeVar("_CommandFn", bound=Callable[[CommandSession],
                     Union[_CommandAnswer, Awaitable[_CommandAnswer]]])
_CommandAllow = Union[None, Callable[[str], bool], Iterable[str]]

class Commands(_IMHelper):
    session_count: int
    def add(self, node: str, name: str,
            fn: Callable[[CommandSession], Union[_CommandAnswer, Awaitable[_CommandAnswer]]], *,
            allow: _CommandAllow = ...) -> None: ...
    def remove(self, node: str) -> None: ...
    def set_limits(self, *, per_requester: int = ..., max_sessions: int = ...,
                   timeout: float = ...) -> None: ...
    # futures of list[CommandItem] and of CommandResult (see _Done above)
    def list(self, jid: str, *, callback: Optional[_Done] = ...) -> Any: ...
    def execute(self, jid: str, node: str, form: Optional[Form] = ..., *,
                callback: Optional[_Done] = ...) -> Any: ...
    def proceed(self, jid: str, node: str, session_id: str, action: str = ...,
                form: Optional[Form] = ..., *, callback: Optional[_Done] = ...) -> Any: ...

# ---- HTTP File Upload (XEP-0363) --------------------------------------------
_UploadSource = Union[str, "_os.PathLike[str]", bytes, bytearray, memoryview]
class UploadError(Error):
    condition: Optional[str]
    text: Optional[str]
    max_file_size: int
    http_status: int
    retry_stamp: Optional[str]
class Uploader:
    def __init__(self, client: Client) -> None: ...
    @property
    def service(self) -> Optional[str]: ...
    @property
    def max_file_size(self) -> int: ...
    def set_service(self, jid: Optional[str], max_file_size: int = ...) -> None: ...
    def allow_http(self, allow: bool = ...) -> None: ...
    def add_resolve(self, host: str, port: int, address: str) -> None: ...
    async def upload(self, source: _UploadSource, filename: Optional[str] = ...,
                     content_type: Optional[str] = ..., *,
                     progress: Optional[Callable[[int, int], Any]] = ...) -> str: ...
def oob_url(message: Union[Stanza, _XML]) -> Optional[str]: ...

# ---- PubSub/PEP, bookmarks, avatars, nicknames (epode/_pep.py) ----------------
class PubSubError(StanzaError):
    pubsub_condition: Optional[str]
    def __init__(self, condition: str, text: Optional[str] = ...,
                 pubsub_condition: Optional[str] = ...) -> None: ...
class PubSubItem(NamedTuple):
    id: Optional[str]
    publisher: Optional[str]
    payload: Optional[Stanza]
class PubSubEvent(NamedTuple):
    type: str
    from_: Optional[str]
    node: str
    item: Optional[PubSubItem]
class Bookmark(NamedTuple):
    room: str
    name: Optional[str]
    nick: Optional[str]
    password: Optional[str]
    autojoin: bool
_Payload = Union[Stanza, _XML, None]
class PubSub(_IMHelper):
    def on_event(self, node: Optional[str] = ...) -> Callable[[_F], _F]: ...
    def remove_handler(self, fn: Callable[..., Any]) -> None: ...
    def notify(self, node: str, on: bool = ...) -> None: ...
    # futures (or callback(result, error)) of: the item id; list[PubSubItem];
    # None; (subscription, subid); None; None; None
    def publish(self, node: str, item: _Payload = ..., id: Optional[str] = ...,
                jid: Optional[str] = ..., options: Optional[Mapping[str, Any]] = ..., *,
                callback: Optional[_Done] = ...) -> Any: ...
    def fetch(self, node: str, jid: Optional[str] = ..., id: Optional[str] = ...,
              max: int = ..., *, callback: Optional[_Done] = ...) -> Any: ...
    def retract(self, node: str, id: str, jid: Optional[str] = ..., notify: bool = ..., *,
                callback: Optional[_Done] = ...) -> Any: ...
    def subscribe(self, jid: str, node: str, *, callback: Optional[_Done] = ...) -> Any: ...
    def unsubscribe(self, jid: str, node: str, subid: Optional[str] = ..., *,
                    callback: Optional[_Done] = ...) -> Any: ...
    def delete_node(self, node: str, jid: Optional[str] = ..., *,
                    callback: Optional[_Done] = ...) -> Any: ...
    def configure(self, node: str, options: Mapping[str, Any], jid: Optional[str] = ..., *,
                  callback: Optional[_Done] = ...) -> Any: ...
class Bookmarks(_IMHelper):
    items: list[Bookmark]
    received: bool
    # fn(event, bookmark): 'loaded' (None), 'added', 'updated', 'removed', 'fetch_failed'
    def on_change(self, fn: _F) -> _F: ...
    def remove_handler(self, fn: Callable[..., Any]) -> None: ...
    def list(self, *, callback: Optional[_Done] = ...) -> Any: ...
    # autojoin defaults to True (a bookmark added from a client is a room to be in)
    def add(self, room: str, autojoin: bool = ..., nick: Optional[str] = ...,
            name: Optional[str] = ..., password: Optional[str] = ..., *,
            callback: Optional[_Done] = ...) -> Any: ...
    def autojoin(self, enabled: bool = ..., nick: Optional[str] = ...) -> None: ...
    def remove(self, room: str, *, callback: Optional[_Done] = ...) -> Any: ...
class Avatar(_IMHelper):
    hash: Optional[str]
    # fn(jid, id, source): id '' for no avatar, None when unknown; source 'pep' or 'vcard'
    def on_change(self, fn: _F) -> _F: ...
    def remove_handler(self, fn: Callable[..., Any]) -> None: ...
    def publish(self, data: bytes, type: str = ..., width: int = ..., height: int = ..., *,
                callback: Optional[_Done] = ...) -> Any: ...
    def disable(self, *, callback: Optional[_Done] = ...) -> Any: ...
    def fetch(self, jid: Optional[str] = ..., *, callback: Optional[_Done] = ...) -> Any: ...
class Nickname(_IMHelper):
    own: Optional[str]
    # fn(jid, nick, source): source 'pep', 'presence' or 'message' (the sender's claim)
    def on_change(self, fn: _F) -> _F: ...
    def remove_handler(self, fn: Callable[..., Any]) -> None: ...
    def set(self, nick: Optional[str], *, callback: Optional[_Done] = ...) -> Any: ...
