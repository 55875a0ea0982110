"""epode — an XMPP client library (C, with this Python binding).

    import asyncio, epode

    async def main():
        client = epode.Client("bot@example.org", "secret")

        @client.on_message
        async def echo(msg):
            if msg.body and msg.type == "chat":
                client.send_message(msg.from_, msg.body)

        await client.connect()
        await client.wait_disconnected()

    asyncio.run(main())

The C core does the parsing, TLS, SASL, stream management and dispatch;
stanzas reach Python as lazy handles (``epode.Message`` and friends)
that read the C tree only when asked.
"""

from . import _epode
from ._client import Client, Component
from ._epode import (Connection, Context, Error, Iq, Message, Presence, Stanza, StanzaError,
                     TimeoutError, error_codes, strerror)
from ._epode import LOG_DEBUG, LOG_ERROR, LOG_INFO, LOG_WARN, LOG_XML
from ._loop import XML, default_context, log_to_logging

__all__ = ["Client", "Component", "Connection", "Context", "Error", "Iq", "Message", "Presence", "Stanza",
           "StanzaError", "TimeoutError", "XML", "LOG_ERROR", "LOG_WARN", "LOG_INFO", "LOG_DEBUG",
           "LOG_XML", "default_context", "error_codes", "log_to_logging", "strerror",
           "__version__"]

__version__ = _epode.epode_version

# Error codes as module constants: epode.EAUTH, epode.ETIMEDOUT, ...
globals().update(error_codes)
__all__ += sorted(error_codes)

# The IM layer: client.roster, client.presence, client.disco, client.caps,
# client.muc, and the values they hand out.
from ._im import (Caps, Disco, DiscoField, DiscoForm, DiscoInfo, DiscoItem,  # noqa: E402
                  Identity, Muc, MucEvent, Occupant, PresenceInfo, PresenceTracker, Room,
                  Roster, RosterItem)
from . import _im  # noqa: E402
__all__ += _im.__all__

# The modern IM layer: client.blocking, client.mam, client.set_active(), and
# builders for message features (the features themselves are Message
# attributes).
from ._modern import (Blocking, Mam, Page, correction, marker, reactions, reply,  # noqa: E402
                      retraction)
__all__ += ["Blocking", "Mam", "Page", "correction", "marker", "reactions", "reply",
            "retraction"]

# In-band registration (XEP-0077): epode.register(); client.change_password()
# and client.unregister() are Client methods.
from ._register import FormField, RegistrationForm, register  # noqa: E402
__all__ += ["FormField", "RegistrationForm", "register"]

from ._commands import (CommandError, CommandItem, CommandReply,  # noqa: E402
                        CommandResult, CommandSession, Commands, Field, Form, Note)
__all__ += ["CommandError", "CommandItem", "CommandReply", "CommandResult", "CommandSession",
            "Commands", "Field", "Form", "Note"]

# HTTP File Upload (XEP-0363): await client.upload(...); client.send_url().
from ._upload import UploadError, Uploader, oob_url  # noqa: E402
__all__ += ["UploadError", "Uploader", "oob_url"]

# PubSub/PEP (XEP-0060/0163), bookmarks (XEP-0402), avatars (XEP-0084/0153),
# nicknames (XEP-0172): client.pubsub, .bookmarks, .avatar, .nickname.
from ._pep import (Avatar, Bookmark, Bookmarks, Nickname, PubSub, PubSubError,  # noqa: E402
                   PubSubEvent, PubSubItem)
__all__ += ["Avatar", "Bookmark", "Bookmarks", "Nickname", "PubSub", "PubSubError",
            "PubSubEvent", "PubSubItem"]

# FAST tokens (XEP-0484) in a file: Client(..., fast_token_store=FastTokenFile(path)).
from ._fast import FastTokenFile, FastTokenStore  # noqa: E402
__all__ += ["FastTokenFile", "FastTokenStore"]

# Attributes every epode.Error has, even one made from Python.
for _name in ("code", "name", "condition", "text", "reason", "redirect"):
    setattr(Error, _name, None)


def _stanza_error_init(self, condition="undefined-condition", text=None, type=None,
                       stanza=None):
    """StanzaError(condition, text=None, type=None): raise it from an IQ
    handler to answer with that RFC 6120 condition."""
    Exception.__init__(self, condition if not text else "%s: %s" % (condition, text))
    self.condition = condition
    self.text = text
    self.type = type
    self.stanza = stanza
    self.code = _epode.EPROTOCOL
    self.name = "EPROTOCOL"


StanzaError.__init__ = _stanza_error_init
StanzaError.type = None
StanzaError.stanza = None
del _name
