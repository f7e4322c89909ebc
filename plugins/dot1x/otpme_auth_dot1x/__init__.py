"""dot1x: bring a locked switch port up with 802.1x during the login (seed 000's do_dot1x).

Enabled by ``do_dot1x`` on the PAM line::

    auth required pam_python.so pam_otpme_auth.py do_dot1x=auto dot1x_token_type=password

* ``do_dot1x=auto``: only when the default gateway does not answer an ICMP echo
  (sent from a socket, no ``ping`` process); ``force``: always (re-activates
  the connection).
* ``dot1x_connection`` (default ``dot1x-lan``): the NetworkManager connection.
* ``dot1x_token_type`` / ``dot1x_token_types`` (OTPme's own spelling; either,
  not both with different values): ``password``, the typed password.
* ``dot1x_timeout`` (default 30): seconds to wait for the port.

The order (docs/dot1x.md): pre_auth decides whether the port must come up and
tells online not to contact the server yet (``dot1x.pending``); the user is
prompted (collect_credentials); ``otpme_auth_credentials_collected`` brings the
port up with that credential and, on success, sets ``dot1x.link_up`` so online
connects in verify.  On failure the login goes on as offline would (online
answers UNAVAILABLE, the cache stands in) and the user is told why.

jeepney is imported only inside the hooks that talk to NetworkManager: a line
without ``do_dot1x`` never imports it.
"""

from otpme_auth import ConfigError, Key, choice, hookimpl, seconds, text

from .keys import LINK_UP, PENDING

NAME = "dot1x"
TOKEN_TYPES = ("password",)
PLANNED_TOKEN_TYPES = ("yubikey_piv",)
DEFAULT_TIMEOUT = 30
_NEEDED = Key("dot1x.needed", "why this login brings the port up; dot1x only", str)


@hookimpl
def otpme_auth_declare_options():
    return [
        choice("do_dot1x", ("auto", "force"), None,
               "802.1x at login: auto (only when the default gateway does not answer) or force",
               enables=True),
        text("dot1x_connection", "dot1x-lan", "the NetworkManager connection for 802.1x"),
        text("dot1x_token_type", None, "what 802.1x sends: password (the typed password)"),
        text("dot1x_token_types", None, "OTPme's spelling of dot1x_token_type"),
        seconds("dot1x_timeout", DEFAULT_TIMEOUT, "seconds to wait for the 802.1x port",
                maximum=600),
    ]


def token_type(options):
    """The one token type of the line (both spellings accepted, never two different ones)."""
    given = [v for v in (options.dot1x_token_type, options.dot1x_token_types) if v]
    types = {t.strip() for v in given for t in v.split(",") if t.strip()}
    if not types:
        return "password"
    if len(types) > 1:
        raise ConfigError("dot1x_token_type: one token type, not %s" % ", ".join(sorted(types)))
    kind = types.pop()
    if kind in PLANNED_TOKEN_TYPES:
        raise ConfigError("dot1x_token_type=%s is not supported yet (docs/dot1x.md); use "
                          "password" % kind)
    if kind not in TOKEN_TYPES:
        raise ConfigError("dot1x_token_type: unknown type %r (known: %s)"
                          % (kind, ", ".join(TOKEN_TYPES + PLANNED_TOKEN_TYPES)))
    return kind


@hookimpl
def otpme_auth_pre_auth(ctx, options):
    token_type(options)   # a bad value fails before any prompt
    if options.do_dot1x == "auto":
        from .probe import answers, default_gateway
        gateway = default_gateway()
        try:
            if gateway is not None and answers(gateway):
                ctx.log.debug("default gateway %s answers: no 802.1x" % gateway, NAME)
                return None
        except OSError as exc:
            ctx.log.warning("cannot send an ICMP echo (%s): doing 802.1x" % exc, NAME)
        reason = "no default gateway" if gateway is None else "gateway %s does not answer" % gateway
    else:
        reason = "do_dot1x=force"
    ctx.stash[_NEEDED] = reason
    ctx.stash[PENDING] = "the link comes up with 802.1x after the prompt (%s)" % reason
    return None


@hookimpl
def otpme_auth_credentials_collected(ctx, options):
    from otpme_auth import PASSWORD
    if _NEEDED not in ctx.stash or ctx.stash.get(LINK_UP):
        return None
    secret = ctx.credentials.get(PASSWORD)
    if secret is None:
        ctx.log.info("nothing typed: no 802.1x", NAME)
        _show(ctx, "Network login (802.1x) skipped: nothing was typed.")
        return None
    from .nm import Dot1xError, bring_up
    try:
        bring_up(options.dot1x_connection, ctx.user, secret, options.dot1x_timeout,
                 log=lambda text: ctx.log.warning(text, NAME))
    except Dot1xError as exc:
        ctx.log.warning("802.1x failed: %s" % exc, NAME)
        _show(ctx, "Network login (802.1x) failed: %s. Logging in with cached credentials "
                   "if possible." % exc)
        return None
    ctx.log.info("802.1x: connection %r is up (%s)" % (options.dot1x_connection,
                                                      ctx.stash[_NEEDED]), NAME)
    ctx.stash[LINK_UP] = True
    return None


def _show(ctx, text):
    """Tell the user now (the login goes on, so show_errors would never show it)."""
    from otpme_auth import ConversationError
    try:
        ctx.conversation.info(text)
    except ConversationError as exc:
        ctx.log.info("could not show a message: %s" % exc, NAME)
