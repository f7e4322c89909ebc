"""Protocol-level keys that plugins share through the context.

Only what belongs to no single plugin lives here: the server's login answer (the
protocol, docs/protocol.md), a greeting for the user, and the home directory of the
session.  A key between two particular plugins lives with its producer, named
``"<producer>.<what>"``, and the consumer declares the same key (plugins never import
each other; see :class:`otpme_auth.Key`).  A producer writes ``ctx.stash[GREETING] = "..."``;
a consumer reads ``ctx.stash.get(GREETING)``.
"""

from .context import ONE_TIME_CODE, PASSWORD, Key

LOGIN_ANSWER = Key("login_answer", "the server's answer to a successful online login (a dict: "
                   "user, token, token_type, session, offline, shares, auto_mount, greeting, "
                   "password_policy; docs/protocol.md); written by the plugin that logged in "
                   "online, read by those that cache or restore what it allows", dict)
GREETING = Key("greeting", "text to greet the user with after the login (from the server); "
               "read by greeting", str)
HOME_DIRECTORY = Key("home_directory", "the home directory of the session, once created or "
                     "found (mkhomedir)", str)

__all__ = ["PASSWORD", "ONE_TIME_CODE", "GREETING", "HOME_DIRECTORY", "LOGIN_ANSWER", "Key"]
