"""In-band registration (XEP-0077) for Python: ``await epode.register(jid,
password, ...)`` creates an account, ``await client.change_password(new)``
and ``await client.unregister()`` manage a logged-in one.

The stream of a registration stops after TLS, before logging in (the C
connection's registration mode, ``Connection.configure(register=True)``:
never without TLS unless asked with 'cleartext'); the IQs are the same the
C helper (epode/register.h) sends. Refusals raise ``epode.StanzaError``
whose ``.condition`` is the server's ("conflict", "not-acceptable",
"not-allowed" — registration closed, ...)."""

from __future__ import annotations

import inspect
from typing import Any, Awaitable, Callable, NamedTuple, Optional, Union

from . import _epode
from ._epode import Error, Iq, Stanza, StanzaError

NS_REGISTER = "jabber:iq:register"
NS_REGISTER_FEATURE = "http://jabber.org/features/iq-register"
NS_DATA = "jabber:x:data"
NS_OOB = "jabber:x:oob"
NS_MEDIA = "urn:xmpp:media-element"

#: legacy fields XEP-0077 lists (besides instructions, registered, remove)
LEGACY_FIELDS = ("username", "nick", "password", "name", "first", "last", "email", "address",
                 "city", "state", "zip", "phone", "url", "date", "misc", "text", "key")

#: short phrases for the conditions a registration meets (as the C
#: epode_register_cond_text())
COND_TEXT = {
    "conflict": "already registered",
    "not-acceptable": "required information missing or not acceptable",
    "not-allowed": "registration not allowed (closed, or a check such as a CAPTCHA failed)",
    "bad-request": "bad request (a required field is missing)",
    "forbidden": "forbidden",
    "not-authorized": "not authorized",
    "resource-constraint": "too many registrations: try again later",
    "service-unavailable": "in-band registration is not offered",
    "feature-not-implemented": "in-band registration is not implemented",
}


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


def _parse_data_form(x: Stanza, form: RegistrationForm) -> None:
    form.data_form = True
    form.title = x.find_text("title", NS_DATA)
    instr = [i.text for i in x.find_all("instructions", NS_DATA)]
    if instr:
        form.instructions = "\n".join(instr)
    seen = set()
    for f in x.find_all("field", NS_DATA):
        var = f.get("var")
        ftype = f.get("type") or "text-single"
        if var is None and ftype != "fixed":
            raise _protocol("the server's registration form has a field without var")
        if var is not None:
            if var in seen:
                raise _protocol("the server's registration form names %r twice" % var)
            seen.add(var)
        options = []
        for o in f.find_all("option", NS_DATA):
            v = o.find_text("value", NS_DATA)
            if v is not None:
                options.append((o.get("label"), v))
        form.fields.append(FormField(
            var, ftype, f.get("label"), f.find("required", NS_DATA) is not None,
            [v.text for v in f.find_all("value", NS_DATA)], options, f.find("media", NS_MEDIA)))
        if var == "FORM_TYPE" and ftype == "hidden":
            form.form_type = form.fields[-1].value


def _parse(answer: Stanza) -> RegistrationForm:
    q = answer.find("query", NS_REGISTER)
    if q is None:
        raise _protocol("the server's answer carries no registration query")
    form = RegistrationForm()
    form.answer = answer
    x = q.find("x", NS_DATA)
    if x is not None:
        _parse_data_form(x, form)
    else:
        for c in q:
            if c.ns == NS_REGISTER and c.name in LEGACY_FIELDS and c.name not in form:
                ftype = ("text-private" if c.name == "password" else
                         "hidden" if c.name == "key" else "text-single")
                form.fields.append(FormField(c.name, ftype, None, ftype != "hidden",
                                             [c.text] if c.text else [], [], None))
        form.instructions = q.find_text("instructions", NS_REGISTER)
    form.registered = q.find("registered", NS_REGISTER) is not None
    oob = q.find("x", NS_OOB)
    if oob is not None:
        form.oob_url = oob.find_text("url", NS_OOB)
    return form


def _protocol(text: str) -> Error:
    err = Error(text)
    err.code = _epode.EPROTOCOL
    err.name = "EPROTOCOL"
    return err


def _invalid(text: str) -> Error:
    err = Error(text)
    err.code = _epode.EINVAL
    err.name = "EINVAL"
    return err


def _query(type_: str) -> tuple[Iq, Stanza]:
    iq = Iq(type_)
    return iq, iq.add("query", NS_REGISTER)


def _fill_query(q: Stanza, form: RegistrationForm) -> None:
    if form.data_form:
        x = q.add("x", NS_DATA, {"type": "submit"})
        for f in form.fields:
            if f.var is None or f.type == "fixed":
                continue
            el = x.add("field", attrs={"var": f.var, "type": "hidden"} if f.type == "hidden"
                       else {"var": f.var})
            for v in f.values:
                el.add("value", text=v)
    else:
        for f in form.fields:
            q.add(f.var, text=f.value or None)


def _refusal(exc: StanzaError) -> StanzaError:
    """The server's error with XEP-0077's phrase when it sent no text."""
    cond = exc.condition or "undefined-condition"
    text = exc.text or COND_TEXT.get(cond, cond)
    err = StanzaError(cond, text, exc.type, exc.stanza)
    return err


async def _iq(client: Any, iq: Iq, timeout: float) -> Stanza:
    try:
        return await client.iq(iq, timeout)
    except StanzaError as exc:
        raise _refusal(exc) from None


async def fetch_form(client: Any, timeout: float = 30.0) -> RegistrationForm:
    """Asks the server for its registration form (on a registration stream,
    or logged in). A server that does not advertise registration before
    authentication is not asked (some end the stream for it):
    StanzaError('service-unavailable')."""
    feats = client.connection.features
    if client.bound_jid is None and feats is not None and \
            feats.find("register", NS_REGISTER_FEATURE) is None:
        raise StanzaError("service-unavailable", "the server does not offer in-band "
                          "registration (no register stream feature)", "cancel")
    iq, _ = _query("get")
    return _parse(await _iq(client, iq, timeout))


async def submit_form(client: Any, form: RegistrationForm, timeout: float = 30.0) -> None:
    """Sends the form back (legacy fields as they came, a data form as its
    submission). Raises Error (EINVAL) if a required field is empty."""
    missing = form.missing()
    if missing:
        raise _invalid("the registration form is not complete: field %r has no value" % missing[0])
    iq, q = _query("set")
    _fill_query(q, form)
    await _iq(client, iq, timeout)


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
    bound = client.bound_jid
    if not bound or "@" not in bound:
        raise Error("change_password: not logged in")
    username = bound.split("@", 1)[0]
    iq, q = _query("set")
    q.add("username", text=username)
    q.add("password", text=new_password)
    try:
        await client.iq(iq, timeout)
        return
    except StanzaError as exc:
        x = None
        if exc.stanza is not None and old_password is not None:
            rq = exc.stanza.find("query", NS_REGISTER)
            x = rq.find("x", NS_DATA) if rq is not None else None
        if x is None:
            raise _refusal(exc) from None
    # the server wants the old password, through its form
    form = RegistrationForm()
    _parse_data_form(x, form)
    for var, value in (("username", username), ("old_password", old_password),
                       ("password", new_password)):
        if var in form and (var != "username" or not form[var]):
            form[var] = value
    await submit_form(client, form, timeout)


async def unregister(client: Any, timeout: float = 30.0) -> None:
    if not client.bound_jid:
        raise Error("unregister: not logged in")
    iq, q = _query("set")
    q.add("remove")
    await _iq(client, iq, timeout)
