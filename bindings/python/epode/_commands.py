"""Ad-hoc commands (XEP-0050) for epode.Client, with data forms (XEP-0004).

Offering commands (a bot)::

    @client.command("uptime", "Uptime")
    def uptime(session):
        return session.complete(notes=["up for %d s" % seconds()])

    @client.command("echo", "Echo a text")
    def echo(session):
        if session.stage == 0:                  # the first request: ask
            form = epode.Form("form", title="Echo")
            form.add("text", label="Text", required=True)
            return session.ask(form)            # allows 'complete' by default
        return session.complete(notes=[session.form["text"]])

The same function runs for every request of a session: ``session.stage``
counts the requests before this one, ``session.action`` is what the
requester asked ('execute', 'next', 'prev', 'complete'), ``session.form``
what it submitted (an epode.Form, or None) and ``session.data`` a dict
kept for the session's life (per session, dropped at its end). Return
``session.ask(form, actions=..., default=...)`` to go on (status
executing), ``session.complete(form=None, notes=...)`` to finish,
``session.cancel(notes=...)`` to abandon; a Form of type 'form' returned
as it is means ask(form), of type 'result' complete(form); a str means
complete(notes=[str]); None means complete(). A coroutine function works
the same (the answer goes out when it returns; one that has not
returned within the session timeout is cancelled, and the requester
hears not-allowed + session-expired). Raise
``epode.CommandError(condition, specific=None, text=None)`` (or any
epode.StanzaError) to answer with an error; any other exception is
reported to the client's error handlers and answered
internal-server-error. The function is not called when the requester
cancels or the session times out; the session's data is dropped then.

Who may list and run a command: ``allow=`` None (the default: our own
account only, any of its resources), a callable(requester_full_jid) ->
bool, or an iterable of JIDs (bare JIDs match every resource).

Running another entity's commands (a client)::

    items = await client.commands.list("bot@example.org/res")
    r = await client.commands.execute("bot@example.org/res", "echo")
    if r.status == "executing" and r.form:
        r = await r.complete(r.form.submit(text="hello"))
    print(r.status, r.notes, r.form)

A CommandResult has ``status`` ('executing', 'completed', 'canceled'),
``session_id``, ``notes`` (Note(type, text)), ``form``, ``actions``
(allowed next: 'next', 'prev', 'complete') and ``default_action``; its
``next(form)``, ``prev()``, ``complete(form)``, ``proceed(form)`` (the
default action) and ``cancel()`` send the session's next request and
return the next CommandResult. Errors raise epode.CommandError (a
StanzaError with ``specific``: 'bad-sessionid', 'bad-action', ...).
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, Callable, Iterable, NamedTuple, Optional, Union

from . import _epode
from ._epode import StanzaError
from ._im import _Helper, _Outcome, _status_error

__all__ = ["CommandError", "CommandItem", "CommandReply", "CommandResult", "CommandSession",
           "Commands", "Field", "Form", "Note"]


# ---- forms ---------------------------------------------------------------------------

class Field:
    """A data form field: ``var``, ``type`` (XEP-0004's name, e.g.
    'text-single', 'list-single', 'boolean', 'jid-single'), ``label``,
    ``desc``, ``required``, ``values`` (a list of str) and ``options``
    (a list of (label, value)); ``value`` is the first value or None."""

    __slots__ = ("var", "type", "label", "desc", "required", "values", "options")

    def __init__(self, var: Optional[str], type: str = "text-single",
                 label: Optional[str] = None, desc: Optional[str] = None,
                 required: bool = False, values: Iterable[str] = (),
                 options: Iterable[tuple] = ()) -> None:
        self.var = var
        self.type = type
        self.label = label
        self.desc = desc
        self.required = bool(required)
        self.values = [str(v) for v in values]
        self.options = [(lbl, str(val)) for lbl, val in options]

    @property
    def value(self) -> Optional[str]:
        return self.values[0] if self.values else None

    @value.setter
    def value(self, v: Any) -> None:
        self.values = [] if v is None else [_text(v)]

    def __repr__(self) -> str:
        return "<epode.Field %s %s %r>" % (self.var, self.type, self.values)


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


class Form:
    """A data form (XEP-0004): ``type`` ('form' asks, 'submit' answers,
    'result' returns data, 'cancel'), ``title``, ``instructions`` (a list
    of lines) and ``fields`` (Field objects, in order).

    ``form.add(var, type='text-single', label=None, value=None, ...)``
    adds a field; ``form[var]`` is the field's first value (KeyError if
    no such field), ``form.get(var)`` likewise with a default,
    ``form.field(var)`` the Field; ``form.submit(**values)`` makes the
    submission answering this form (every field's current values,
    changed by ``values``; ``var`` names that are not identifiers go in a
    dict: ``form.submit(**{'muc#roomconfig_roomname': 'x'})``)."""

    def __init__(self, type: str = "form", *, title: Optional[str] = None,
                 instructions: Union[None, str, Iterable[str]] = None,
                 fields: Iterable[Field] = ()) -> None:
        if type not in ("form", "submit", "cancel", "result"):
            raise ValueError("a form's type is 'form', 'submit', 'cancel' or 'result'")
        self.type = type
        self.title = title
        self.instructions = ([instructions] if isinstance(instructions, str)
                             else list(instructions or ()))
        self.fields = list(fields)

    def add(self, var: Optional[str], type: str = "text-single", *, label: Optional[str] = None,
            value: Any = None, values: Iterable[Any] = (), required: bool = False,
            desc: Optional[str] = None, options: Iterable[Any] = ()) -> Field:
        """Adds a field and returns it. ``options`` are values or
        (label, value) pairs."""
        vals = [_text(v) for v in values] + ([] if value is None else [_text(value)])
        opts = [o if isinstance(o, tuple) else (None, str(o)) for o in options]
        f = Field(var, type, label, desc, required, vals, opts)
        self.fields.append(f)
        return f

    def field(self, var: str) -> Optional[Field]:
        return next((f for f in self.fields if f.var == var), None)

    def __getitem__(self, var: str) -> Optional[str]:
        f = self.field(var)
        if f is None:
            raise KeyError(var)
        return f.value

    def get(self, var: str, default: Optional[str] = None) -> Optional[str]:
        f = self.field(var)
        return default if f is None or f.value is None else f.value

    def __contains__(self, var: object) -> bool:
        return any(f.var == var for f in self.fields)

    def submit(self, **values: Any) -> "Form":
        out = Form("submit")
        for f in self.fields:
            if f.var is None or f.type == "fixed":
                continue
            v = values.pop(f.var, _MISSING)
            vals = f.values if v is _MISSING else (
                [_text(x) for x in v] if isinstance(v, (list, tuple)) else
                [] if v is None else [_text(v)])
            out.fields.append(Field(f.var, f.type, values=vals))
        for var, v in values.items():
            out.add(var, value=None if isinstance(v, (list, tuple)) else v,
                    values=v if isinstance(v, (list, tuple)) else ())
        return out

    def _tuple(self) -> tuple:
        return (self.type, self.title, tuple(self.instructions),
                [(f.var, f.type, f.label, f.desc, f.required, tuple(f.values),
                  tuple(f.options)) for f in self.fields])

    @classmethod
    def _from(cls, t: Optional[tuple]) -> Optional["Form"]:
        if t is None:
            return None
        type_, title, instructions, fields = t
        return cls(type_, title=title, instructions=instructions,
                   fields=[Field(*f) for f in fields])

    def __repr__(self) -> str:
        return "<epode.Form %s %s>" % (self.type, [f.var for f in self.fields])


_MISSING = object()


def _form_arg(form: Optional[Form]) -> Optional[tuple]:
    if form is None:
        return None
    if not isinstance(form, Form):
        raise TypeError("form must be an epode.Form or None")
    return form._tuple()


# ---- results and errors ---------------------------------------------------------------

class Note(NamedTuple):
    """A note of a command's answer: ``type`` 'info', 'warn' or 'error'."""
    type: str
    text: str


class CommandItem(NamedTuple):
    """A command another entity offers: run it with
    ``client.commands.execute(item.jid, item.node)``."""
    jid: str
    node: str
    name: Optional[str]


class CommandError(StanzaError):
    """An error answer to a command request: ``condition`` (RFC 6120),
    ``specific`` (XEP-0050's 'malformed-action', 'bad-action',
    'bad-locale', 'bad-payload', 'bad-sessionid', 'session-expired', or
    None) and ``text``. Raise it from a command to answer with it."""

    specific: Optional[str]

    def __init__(self, condition: str = "bad-request", specific: Optional[str] = None,
                 text: Optional[str] = None) -> None:
        super().__init__(condition, text)
        self.specific = specific


class CommandResult:
    """The answer to a command request (see the module's text)."""

    __slots__ = ("jid", "node", "session_id", "status", "notes", "form", "actions",
                 "default_action", "_commands")

    def __init__(self, commands: "Commands", t: tuple) -> None:
        jid, node, sid, status, notes, form, actions, default = t
        self._commands = commands
        self.jid: str = jid
        self.node: str = node
        self.session_id: Optional[str] = sid
        self.status: str = status
        self.notes: list = [Note(*n) for n in notes]
        self.form: Optional[Form] = Form._from(form)
        self.actions: tuple = actions
        self.default_action: Optional[str] = default

    @property
    def completed(self) -> bool:
        return self.status == "completed"

    def _go(self, action: str, form: Optional[Form], callback: Optional[Callable]) -> Any:
        if not self.session_id:
            raise RuntimeError("this answer names no session to continue")
        return self._commands._run(self.jid, self.node, form, self.session_id, action, callback)

    def next(self, form: Optional[Form] = None, *, callback: Optional[Callable] = None) -> Any:
        return self._go("next", form, callback)

    def prev(self, *, callback: Optional[Callable] = None) -> Any:
        return self._go("prev", None, callback)

    def complete(self, form: Optional[Form] = None, *,
                 callback: Optional[Callable] = None) -> Any:
        return self._go("complete", form, callback)

    def proceed(self, form: Optional[Form] = None, *,
                callback: Optional[Callable] = None) -> Any:
        """The session's default action (XEP-0050's 'execute')."""
        return self._go("execute", form, callback)

    def cancel(self, *, callback: Optional[Callable] = None) -> Any:
        return self._go("cancel", None, callback)

    def __repr__(self) -> str:
        return "<epode.CommandResult %s %s %s>" % (self.node, self.status, self.session_id)


# ---- offering ---------------------------------------------------------------------

class CommandReply(NamedTuple):
    """What a command answers (made by CommandSession.ask/complete/cancel)."""
    status: str
    form: Optional[Form]
    notes: tuple
    actions: tuple
    default: Optional[str]


_NoteArg = Union[str, tuple]


def _notes(notes: Iterable[_NoteArg]) -> tuple:
    out = []
    for n in notes:
        if isinstance(n, str):
            out.append(Note("info", n))
        else:
            out.append(Note(*n))
    return tuple(out)


class CommandSession:
    """One request of a session of one of our commands, as its function
    sees it (see the module's text)."""

    __slots__ = ("node", "session_id", "requester", "stage", "action", "form", "data")

    def __init__(self, raw: Any, action: str, form: Optional[Form], data: dict) -> None:
        self.node: str = raw.node
        self.session_id: str = raw.id
        self.requester: str = raw.requester
        self.stage: int = raw.stage
        self.action = action
        self.form = form
        self.data = data

    def ask(self, form: Form, *, actions: Iterable[str] = ("complete",),
            default: Optional[str] = None, notes: Iterable[_NoteArg] = ()) -> CommandReply:
        """Goes on: shows ``form`` and allows ``actions`` next ('next',
        'prev', 'complete'; cancel always)."""
        return CommandReply("executing", form, _notes(notes), tuple(actions), default)

    def complete(self, form: Optional[Form] = None, *,
                 notes: Iterable[_NoteArg] = ()) -> CommandReply:
        """Finishes, with a result form and/or notes."""
        return CommandReply("completed", form, _notes(notes), (), None)

    def cancel(self, *, notes: Iterable[_NoteArg] = ()) -> CommandReply:
        return CommandReply("canceled", None, _notes(notes), (), None)

    def __repr__(self) -> str:
        return "<epode.CommandSession %s %s stage %d>" % (self.node, self.session_id, self.stage)


_Allow = Union[None, Callable[[str], bool], Iterable[str]]


class _Offered(NamedTuple):
    fn: Callable
    allow: Optional[Callable[[str], bool]]


def _allow_fn(allow: _Allow) -> Optional[Callable[[str], bool]]:
    if allow is None:
        return None
    if callable(allow):
        return allow
    jids = [allow] if isinstance(allow, str) else [str(j) for j in allow]

    def check(requester: str) -> bool:
        bare = requester.split("/", 1)[0].lower()
        return any(requester == j or (("/" not in j) and bare == j.lower()) for j in jids)
    return check


class Commands(_Helper):
    """Ad-hoc commands of a client (``client.commands``): offers ours
    (``add``/``remove``, or the ``@client.command`` decorator) and runs
    others' (``list``, ``execute``). See the module's text."""

    def __init__(self, client: Any) -> None:
        super().__init__(client, _epode.Commands(client.connection, client.disco.raw))
        self._offered: dict = {}
        self._data: dict = {}
        self._waiting: dict = {}  # session id -> the task of an async command not answered yet
        self._raw.on_command = self._on_command
        self._raw.on_access = self._on_access

    # ---- ours

    def add(self, node: str, name: str, fn: Callable, *, allow: _Allow = None) -> None:
        self._raw.add(node, name)
        self._offered[node] = _Offered(fn, _allow_fn(allow))

    def remove(self, node: str) -> None:
        self._raw.remove(node)
        self._offered.pop(node, None)

    def set_limits(self, *, per_requester: int = 0, max_sessions: int = 0,
                   timeout: float = 0) -> None:
        """Session bounds: open sessions per requester and in all, and the
        seconds without a request (or without the answer of an async
        command, which is cancelled then) after which a session ends (0:
        the defaults, 5, 1000 and 600 s)."""
        self._raw.set_limits(per_requester, max_sessions, int(timeout * 1000))

    @property
    def session_count(self) -> int:
        return int(self._raw.session_count)

    def _own(self, requester: Optional[str]) -> bool:
        if requester is None:
            return True
        me = self._client.bound_jid or self._client.jid
        return bool(me) and requester.split("/", 1)[0].lower() == me.split("/", 1)[0].lower()

    def _on_access(self, requester: Optional[str], node: str) -> bool:
        off = self._offered.get(node)
        if off is None:
            return False
        if off.allow is None:
            return self._own(requester)
        try:
            return bool(off.allow(requester or ""))
        except Exception as exc:
            self._report(exc)
            return False

    def _on_command(self, raw: Any, action: str, form_t: Optional[tuple]) -> Optional[str]:
        sid = raw.id
        if action == "cancel":
            self._data.pop(sid, None)
            task = self._waiting.pop(sid, None)
            try:
                if task is not None and task is not asyncio.current_task():
                    task.cancel()  # the session ended (timed out): nobody waits for the answer
            except RuntimeError:  # no loop running any more: nothing left to cancel
                pass
            return None
        off = self._offered.get(raw.node)
        if off is None:
            return None
        data = self._data.setdefault(sid, {})
        session = CommandSession(raw, action, Form._from(form_t), data)
        try:
            r = off.fn(session)
        except Exception as exc:
            return self._answer(raw, sid, exc=exc)
        if inspect.isawaitable(r):
            async def later() -> None:
                if not raw.live:  # ended before this task started
                    if inspect.iscoroutine(r):
                        r.close()
                    return
                me = asyncio.current_task()
                self._waiting[sid] = me
                try:
                    res = await r
                except Exception as exc:
                    self._answer(raw, sid, exc=exc, pending=True)
                    return
                finally:
                    if self._waiting.get(sid) is me:
                        del self._waiting[sid]
                self._answer(raw, sid, res, pending=True)
            self._client._spawn(later(), None)
            return "pending"
        return self._answer(raw, sid, r)

    def _answer(self, raw: Any, sid: str, r: Any = None, exc: Optional[BaseException] = None,
                pending: bool = False) -> Optional[str]:
        """Sets the answer on the raw session; returns the status (or
        sends it, for a pending one)."""
        if pending and not raw.live:
            self._data.pop(sid, None)
            return None  # the session ended meanwhile
        status: Optional[str]
        try:
            if exc is not None:
                raise exc
            reply = self._reply_of(r)
            raw.set_form(_form_arg(reply.form))
            for n in reply.notes:
                raw.add_note(n.type, n.text)
            if reply.status == "executing":
                raw.set_actions(reply.actions or ("complete",), reply.default)
            status = reply.status
        except StanzaError as err:
            raw.set_error(getattr(err, "condition", None) or "undefined-condition",
                          getattr(err, "specific", None), getattr(err, "text", None))
            status = "canceled"
        except Exception as err:
            self._report(err)
            status = None  # internal-server-error
        if status != "executing":
            self._data.pop(sid, None)
        if pending:
            try:
                raw.reply(status or "canceled") if status else self._fail(raw)
            except Exception as err:
                self._report(err)
            return None
        return status

    @staticmethod
    def _fail(raw: Any) -> None:
        raw.set_error("internal-server-error")
        raw.reply("canceled")

    @staticmethod
    def _reply_of(r: Any) -> CommandReply:
        if isinstance(r, CommandReply):
            return r
        if r is None:
            return CommandReply("completed", None, (), (), None)
        if isinstance(r, str):
            return CommandReply("completed", None, (Note("info", r),), (), None)
        if isinstance(r, Form):
            if r.type == "form":
                return CommandReply("executing", r, (), ("complete",), None)
            return CommandReply("completed", r, (), (), None)
        raise TypeError("a command returns session.ask()/complete()/cancel(), a Form, a str "
                        "or None, not %s" % type(r).__name__)

    # ---- others'

    def list(self, jid: str, *, callback: Optional[Callable] = None) -> Any:
        """The commands ``jid`` offers us: a list of CommandItem."""
        out = _Outcome(self, callback, "command list", optional=False)

        def answered(status: int, condition: Optional[str], items: list) -> None:
            if status == 0:
                out.set([CommandItem(*i) for i in items])
            elif condition is not None:
                out.set(error=StanzaError(condition))
            else:
                out.set(error=_status_error(status, "command list"))
        self._raw.list(jid, answered)
        return out.future

    def execute(self, jid: str, node: str, form: Optional[Form] = None, *,
                callback: Optional[Callable] = None) -> Any:
        """Runs ``jid``'s command ``node`` (with ``form``, a submission,
        for commands that take their input at once): a CommandResult."""
        return self._run(jid, node, form, None, "execute", callback)

    def proceed(self, jid: str, node: str, session_id: str, action: str = "execute",
                form: Optional[Form] = None, *, callback: Optional[Callable] = None) -> Any:
        """The next request of a session known by its id (what the
        CommandResult methods do)."""
        return self._run(jid, node, form, session_id, action, callback)

    def _run(self, jid: str, node: str, form: Optional[Form], sid: Optional[str], action: str,
             callback: Optional[Callable]) -> Any:
        out = _Outcome(self, callback, "command", optional=False)

        def answered(status: int, condition: Optional[str], specific: Optional[str],
                     text: Optional[str], result: Optional[tuple]) -> None:
            if status == 0 and result is not None:
                out.set(CommandResult(self, result))
            elif condition is not None:
                out.set(error=CommandError(condition, specific, text))
            else:
                out.set(error=_status_error(status, "command"))
        self._raw.run(jid, node, answered, sid, action, _form_arg(form))
        return out.future

    def __repr__(self) -> str:
        return "<epode.Commands %d offered>" % len(self._offered)
