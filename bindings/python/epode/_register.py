"""In-band registration (XEP-0077) for Python: ``await epode.register(jid,
password, ...)`` creates an account, ``await client.change_password(new)``
and ``await client.unregister()`` manage a logged-in one.

The stream of a registration stops after TLS, before logging in (the C
connection's registration mode, ``Connection.configure(register=True)``:
never without TLS unless asked with 'cleartext'); the requests are the C
helper's (epode/register.h, as ``_epode.Register``), turned into
awaitables here, with the form handed to Python so ``fill`` may be a
coroutine (a human solving a CAPTCHA). Refusals raise ``epode.StanzaError``
whose ``.condition`` is the server's ("conflict", "not-acceptable",
"not-allowed" — registration closed or refused, ...)."""

from __future__ import annotations

import inspect
from typing import Any, Awaitable, Callable, NamedTuple, Optional, Union

from . import _epode
from ._epode import Error, Stanza, StanzaError
from ._loop import bind_to_running_loop

class FormField(NamedTuple):
    """One field of a registration form. ``values`` is a list (the one
    value of a single-valued field is ``values[0]``); ``options`` a list
    of (label, value); ``media`` the XEP-0221 ``<media/>`` element (a
    CAPTCHA image's URIs) or None."""
    var: Optional[str]
    type: str
    label: Optional[str]
    required: bool
    values: list
    options: list
    media: Optional[Stanza]

    @property
    def value(self) -> Optional[str]:
        return self.values[0] if self.values else None


class RegistrationForm:
    """What the server asks for: ``fields`` (FormField, in order),
    ``instructions``, ``title``, ``oob_url`` (registration on a web page),
    ``registered`` (already registered), ``data_form`` (a XEP-0004 form,
    else legacy fields), ``answer`` (the whole IQ, for XEP-0231 data a
    CAPTCHA refers to). Fill it with ``form[var] = value``."""

    def __init__(self) -> None:
        self.fields: list[FormField] = []
        self.title: Optional[str] = None
        self.instructions: Optional[str] = None
        self.oob_url: Optional[str] = None
        self.registered = False
        self.data_form = False
        self.answer: Optional[Stanza] = None
        self.form_type: Optional[str] = None

    def field(self, var: str) -> Optional[FormField]:
        return next((f for f in self.fields if f.var == var), None)

    def __contains__(self, var: object) -> bool:
        return any(f.var == var for f in self.fields)

    def __getitem__(self, var: str) -> Optional[str]:
        f = self.field(var)
        if f is None:
            raise KeyError(var)
        return f.value

    def __setitem__(self, var: str, value: Union[str, list, None]) -> None:
        for i, f in enumerate(self.fields):
            if f.var == var:
                vals = [] if value is None else list(value) if isinstance(value, list) else [value]
                if not all(isinstance(v, str) for v in vals):
                    raise TypeError("form values are str")
                self.fields[i] = f._replace(values=vals)
                return
        raise KeyError(var)

    def missing(self) -> list[str]:
        """The vars of required fields still without a value."""
        return [f.var for f in self.fields
                if f.required and f.var and f.type != "fixed" and not (f.value or "")]

    def __repr__(self) -> str:
        return "<RegistrationForm %s fields=%s>" % ("data" if self.data_form else "legacy",
                                                   [f.var for f in self.fields])


def _error(status: int, text: Optional[str]) -> Error:
    if status == _epode.ETIMEDOUT:
        return _epode.TimeoutError(text or "no answer from the server in time")
    err = Error(text or _epode.strerror(status))
    err.code = status
    err.name = next((k for k, v in _epode.error_codes.items() if v == status), None)
    return err


def _invalid(text: str) -> Error:
    err = Error(text)
    err.code = _epode.EINVAL
    err.name = "EINVAL"
    return err


def cond_text(condition: str) -> str:
    """XEP-0077's phrase for a condition ("already registered" for
    conflict), as the C epode_register_cond_text()."""
    return _epode.Register.cond_text(condition)


async def _request(client: Any, start: Callable[[Callable[..., None]], None]) -> None:
    """Runs one request of the C helper (start(callback)) and waits for it."""
    fut = bind_to_running_loop(client._context).create_future()

    def done(status: int, condition: Optional[str], text: Optional[str]) -> None:
        if fut.done():
            return
        if status < 0:
            fut.set_exception(_error(status, text))
        elif condition is not None:
            fut.set_exception(StanzaError(condition, text or cond_text(condition), "cancel"))
        else:
            fut.set_result(None)

    start(done)
    await fut


def _helper(client: Any) -> Any:
    """The client's C registration helper (made on first use)."""
    reg = getattr(client, "_register_helper", None)
    if reg is None:
        reg = client._register_helper = _epode.Register(client.connection)
    return reg


def _form_of(d: dict) -> RegistrationForm:
    form = RegistrationForm()
    form.fields = [FormField(*f) for f in d["fields"]]
    for k in ("title", "instructions", "oob_url", "registered", "data_form", "form_type",
              "answer"):
        setattr(form, k, d[k])
    return form


async def fetch_form(client: Any, timeout: float = 30.0) -> RegistrationForm:
    """Asks the server for its registration form (on a registration stream,
    or logged in). A server that does not advertise registration before
    authentication is not asked (some end the stream for it):
    StanzaError('service-unavailable')."""
    reg = _helper(client)
    await _request(client, lambda done: reg.fetch(done, timeout))
    return _form_of(reg.form())


async def submit_form(client: Any, form: RegistrationForm, timeout: float = 30.0) -> None:
    """Sends the form back (legacy fields as they came, a data form as its
    submission) with the values set in it. Raises Error (EINVAL) if a
    required field is empty."""
    reg = _helper(client)
    for f in form.fields:
        if f.var is not None and f.type != "fixed":
            reg.set_value(f.var, list(f.values))
    await _request(client, lambda done: reg.submit(done, timeout))


Fill = Callable[[RegistrationForm], Union[None, Awaitable[None]]]


async def register_account(client: Any, username: str, password: str, fill: Optional[Fill] = None,
                           timeout: float = 30.0) -> RegistrationForm:
    form = await fetch_form(client, timeout)
    for var, value in (("username", username), ("password", password)):
        if var in form:
            form[var] = value
    only_oob = form.oob_url is not None and not form.fields
    if form.missing() or only_oob:
        if fill is None:
            if only_oob:
                raise _invalid("the server asks for registration out of band: %s" % form.oob_url)
            raise _invalid("the server also asks for %r: pass fill= to answer"
                           % form.missing()[0])
        done = fill(form)
        if inspect.isawaitable(done):
            await done
    await submit_form(client, form, timeout)
    return form


async def register(jid: str, password: str, server: Optional[str] = None,
                   port: Optional[int] = None, ca_file: Optional[str] = None,
                   direct_tls: bool = False, *, fill: Optional[Fill] = None,
                   timeout: float = 30.0, login: bool = False, **options: Any) -> Any:
    """Creates the account ``jid`` (its localpart is the username) with
    ``password`` by in-band registration, then closes the connection; log
    in with an ``epode.Client`` afterwards. ``fill(form)`` (may be a
    coroutine function) is called when the server asks for more than a
    username and password (an e-mail, a CAPTCHA: ``form.fields`` with
    their ``media``, ``form.answer``): set ``form[var] = value``. Other
    keyword options are Client's (``context``, ``tls``, ``verify``,
    ``connect_timeout``, ...); ``tls='disabled'`` also needs
    ``allow_cleartext=True``, as registration sends the password.
    With ``login=True`` it then logs in with the new account on a new
    stream and returns that connected ``epode.Client`` (else None).

    Raises ``epode.StanzaError`` for the server's refusal (``.condition``
    'conflict' — already registered, 'not-acceptable', 'not-allowed' —
    registration closed, ...; ``str()`` reads "conflict: already
    registered"), ``epode.Error`` if the connection fails (``.reason``),
    or if the form cannot be filled (EINVAL), ``epode.TimeoutError``."""
    from ._client import Client
    allow_cleartext = bool(options.pop("allow_cleartext", False))
    username, at, _ = jid.partition("@")
    if not at or not username or "/" in username:
        raise ValueError("the JID needs a username (user@domain): %r" % (jid,))
    client = Client(jid, None, server, port, ca_file, direct_tls, **options)
    client.connection.configure(register="cleartext" if allow_cleartext else True)
    await client.connect(timeout)
    try:
        await register_account(client, username, password, fill, timeout)
    finally:
        await client.disconnect()
    if not login:
        return None
    options.pop("allow_cleartext", None)
    user = Client(jid, password, server, port, ca_file, direct_tls, **options)
    await user.connect(timeout)
    return user


async def change_password(client: Any, new_password: str, old_password: Optional[str] = None,
                          timeout: float = 30.0) -> None:
    if not client.bound_jid:
        raise _error(_epode.ESTATE, "change_password: not logged in")
    reg = _helper(client)
    await _request(client, lambda done: reg.change_password(new_password, done, old_password))


async def unregister(client: Any, timeout: float = 30.0) -> None:
    if not client.bound_jid:
        raise _error(_epode.ESTATE, "unregister: not logged in")
    reg = _helper(client)
    await _request(client, lambda done: reg.remove(done))
