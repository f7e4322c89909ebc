"""greeting: greet the user after a login, show why a login failed.

Enabled by any of its flags on the PAM line::

    auth required pam_python.so pam_otpme_auth.py online_greeting offline_greeting show_errors

* ``online_greeting`` / ``offline_greeting``: after a successful login in that
  mode, show the server's greeting (``ctx.stash[GREETING]``) or a default text
  that says which mode it was.
* ``show_errors``: after a failed login, show the messages meant for the user
  (the deciding ``Decision.user_message`` and ``ctx.messages``), never the
  log reason, which may name internals.
* ``message_timeout``: keep a shown message on screen this long, where it
  would otherwise vanish: only for a graphical application (``ctx.graphical``:
  PAM_XDISPLAY set, or a PAM_TTY such as ``:0``), never for a terminal one
  (sshd, sudo, su, login keep the text on the terminal).  The wait is
  measured from when the first message of this PAM call was sent, and only the
  remainder is slept, so a PAM call never waits longer than asked, however
  many messages it shows and however slow the application's conversation is.

Stdlib only and nothing heavy at import: this runs on the login path.
"""

import time

from otpme_auth import ConversationError, Key, flag, hookimpl, seconds
from otpme_auth.keys import GREETING

NAME = "greeting"
DEFAULT_TIMEOUT = 2
# A greeting that keeps a login waiting for minutes is a typo, not a wish.
MAX_TIMEOUT = 60
# Linux-PAM's PAM_MAX_MSG_SIZE is 512 bytes; some applications cut longer texts.
MAX_CHARS = 500

ONLINE_TEXT = "Welcome, %s. You are logged in online."
OFFLINE_TEXT = ("Welcome, %s. You are logged in offline, with cached credentials: changes to "
                "your account on the server are not seen until you log in online again.")

# monotonic() of the first message this PAM call showed: every later message
# waits only for what is left of that one's time, so one call never waits twice.
_FIRST_SHOWN = Key("greeting.first_shown", "monotonic time of the first message shown; greeting only")


@hookimpl
def otpme_auth_declare_options():
    """online_greeting, offline_greeting, show_errors (each enables the plugin), message_timeout."""
    return [
        flag("online_greeting", "greet the user after a successful online login", enables=True),
        flag("offline_greeting", "greet the user after a successful offline login", enables=True),
        flag("show_errors", "show the user why a login failed (messages meant for the user only)",
             enables=True),
        seconds("message_timeout", DEFAULT_TIMEOUT,
                "seconds a shown message stays on screen before the login goes on (0: no wait)",
                maximum=MAX_TIMEOUT),
    ]


@hookimpl
def otpme_auth_post_login(ctx, options):
    """Greet the user if the line asks for a greeting in this login's mode.

    Online logins (``ctx.offline`` false) are greeted with ``online_greeting``,
    offline ones with ``offline_greeting``.  The text is the server's
    (``ctx.stash[GREETING]``) if it sent one, else a default naming the mode.
    A greeting that cannot be shown is logged, never a reason to fail the login.
    """
    if not (options.offline_greeting if ctx.offline else options.online_greeting):
        return None
    text = ctx.stash.get(GREETING)
    if not isinstance(text, str) or not clean(text):
        text = default_greeting(ctx.user, ctx.offline)
    _show(ctx, options, "info", text, "greeting")
    return None


@hookimpl
def otpme_auth_login_failed(ctx, options, decision):
    """With ``show_errors``, show the user-facing reasons of a failed login.

    Shows ``decision.user_message`` and the texts plugins queued in
    ``ctx.messages`` (once each, in one message so a screen that shows only the
    latest line loses none).  Never ``decision.reason``: that is for the log.
    Nothing is shown when there is no user message.
    """
    if not options.show_errors:
        return None
    texts = []
    for text in [decision.user_message] + list(ctx.messages):
        text = clean(text) if text else ""
        if text and text not in texts:
            texts.append(text)
    if texts:
        _show(ctx, options, "error", "\n".join(texts), "error message")
    return None


def default_greeting(user, offline):
    """The greeting when the server sent none: it says whether the login was offline."""
    return (OFFLINE_TEXT if offline else ONLINE_TEXT) % clean(user).replace("\n", " ")


def clean(text):
    """A message bounded in length, tabs as spaces, sanitised as the core does it.

    Server greetings and user names are not ours: escape sequences and control
    characters are removed by :func:`otpme_auth.conversation.sanitize` (the one
    place; the conversation applies it again to whatever is sent).
    """
    from otpme_auth.conversation import sanitize
    text = sanitize(text).replace("\t", "    ").strip()
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS - 3] + "..."


def _show(ctx, options, style, text, what):
    """Send ``text``, then keep it visible for the rest of ``message_timeout``."""
    conversation = ctx.conversation
    sent = time.monotonic()
    try:
        getattr(conversation, style)(clean(text))
    except ConversationError as exc:
        ctx.log.warning("could not show the %s: %s" % (what, exc), NAME)
        return
    timeout = options.message_timeout
    # PAM_SILENT: the core drops the message, so there is nothing to keep on screen.
    # A terminal application (sshd, sudo, su, login) keeps the message in its
    # scrollback; only a graphical greeter replaces it with its next screen.
    if not timeout or getattr(conversation, "silent", False) or not ctx.graphical:
        return
    first = ctx.stash.setdefault(_FIRST_SHOWN, sent)
    # Count from the first send, before the conversation call: a slow
    # application (or a second message) eats into the wait, never adds to it.
    remaining = first + timeout - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)
