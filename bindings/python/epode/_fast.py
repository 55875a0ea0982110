"""FAST tokens (XEP-0484) kept in a file, the same format as epode-send
--fast-token-file: a ready-made store for Client(fast_token_store=...)."""

import os
import re
import tempfile
from typing import Mapping, Optional, Protocol

_KEYS = ("user-agent", "jid", "mechanism", "expiry", "token")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class FastTokenStore(Protocol):
    """What Client(fast_token_store=...) takes (see the stub)."""

    def load(self, jid: str) -> Optional[Mapping[str, Optional[str]]]: ...

    def store(self, jid: str, token: Optional[Mapping[str, Optional[str]]]) -> None: ...


class FastTokenFile:
    """Keeps one FAST token, and the user-agent id the server files it
    under, in `path` (written atomically with mode 0600; a credential:
    protect it like a password file). Pass it as fast_token_store= and
    its user_agent_id as user_agent=: Client does both for you when given
    this class."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._data: dict[str, str] = {}
        try:
            with open(path, encoding="utf-8") as f:
                for line in f:
                    line = line.rstrip("\r\n")
                    if not line or line.startswith("#"):
                        continue
                    key, _, value = line.partition(" ")
                    if key not in _KEYS or not value:
                        raise ValueError("%s is not a FAST token file" % path)
                    if key == "user-agent" and not _UUID.match(value):
                        raise ValueError("%s: the user-agent id is not a UUID" % path)
                    self._data[key] = value
        except FileNotFoundError:
            pass

    @property
    def user_agent_id(self) -> Optional[str]:
        return self._data.get("user-agent")

    @user_agent_id.setter
    def user_agent_id(self, value: str) -> None:
        """Kept with the next token (Client sets the id in use). A token
        kept under another id is dropped: the server filed it under that
        one, and would refuse it under this."""
        if not isinstance(value, str) or not _UUID.match(value):
            raise ValueError("user_agent_id must be a UUID, not %r" % (value,))
        if self._data.get("user-agent") not in (None, value):
            for k in ("jid", "mechanism", "expiry", "token"):
                self._data.pop(k, None)
        self._data["user-agent"] = value

    def load(self, jid: str) -> Optional[dict[str, Optional[str]]]:
        if "token" not in self._data:
            return None
        expiry = self._data.get("expiry")
        return {"jid": self._data.get("jid"), "mechanism": self._data.get("mechanism"),
                "token": self._data["token"], "expiry": None if expiry in (None, "-") else expiry}

    def store(self, jid: str, token: Optional[Mapping[str, Optional[str]]]) -> None:
        """Replaces the token in the file (None: removes it). ValueError,
        the file left as it was, for a value with a control character: a
        newline would add lines, and keys, to the file."""
        if token is not None:
            for k in ("jid", "mechanism", "expiry", "token"):
                v = token.get(k)
                if v is not None and _CONTROL.search(v):
                    raise ValueError("FAST token %s with a control character: not stored" % k)
        for k in ("jid", "mechanism", "expiry", "token"):
            self._data.pop(k, None)
        if token is not None:
            self._data.update({"jid": token["jid"] or jid, "mechanism": token["mechanism"] or "",
                               "expiry": token.get("expiry") or "-", "token": token["token"] or ""})
        self._write()

    def _write(self) -> None:
        d = os.path.dirname(os.path.abspath(self.path))
        fd, tmp = tempfile.mkstemp(dir=d, prefix=".fast-token.")  # mode 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write("# FAST token (XEP-0484) of epode: a credential, keep it like a password\n")
                for k in _KEYS:
                    if k in self._data:
                        f.write("%s %s\n" % (k, self._data[k]))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            os.unlink(tmp)
            raise
