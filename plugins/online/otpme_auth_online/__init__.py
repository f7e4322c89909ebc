"""online: log in against the realm's authentication server (seed 000's core).

Enabled by the bare word ``online``, and by default on any authentication line
that names no other verifier (seed 000's minimal ``pam_otpme.py try_first_pass``).

* pre-auth: ``DENY_LOGIN_USERS`` / ``VALID_LOGIN_USERS`` of the host config
  refuse before any prompt.
* credentials: the server is asked what this user's login needs (the
  protocol's pre-auth; here, after every plugin's pre-auth hook ran, so a
  plugin that set ``OFFLINE_FIRST`` (``unlock_via_offline_token``) keeps us
  from contacting the server at all).  If no server answers within
  ``connect_timeout``, the login goes on: offline may stand in.  Then one
  prompt, the text the server gives ("Password+OTP: " for a password with a
  second factor), with try/use_first_pass and nullok.
* verify: ALLOW on ``ok``; DENY on any answer the server gave that is not
  ``ok`` (wrong code, user disabled, blocked, ``401``/``403`` ``host_disabled``
  / ``host_unknown``, any other 4xx, an answer we cannot read): offline is then
  never tried.  UNAVAILABLE only when no server answered in time (no
  connection within ``connect_timeout``, a failed TLS handshake, no answer
  within ``connection_timeout``, the connection lost before the answer) or a
  server answered 5xx (it could not decide).  A refusal in the pre-auth
  request refuses the login before the prompt.
* ``host_disabled`` / ``host_unknown`` also set ``HOST_DISABLED``: offline and
  sessionkeep then drop this host's caches and kept sessions (docs/offline.md).
* The server's answer (session, offline data, shares, greeting) goes to the
  context for the offline, sessionkeep, automount and greeting plugins.
* account (pam_acct_mgmt): the host lists, then the server's ``/v1/account``
  answer for this user on this host, whichever module authenticated them.
"""

from otpme_auth import (
    ConfigError, Key, LoginRefused, allow, choice, deny, hookimpl, path, seconds, unavailable,
)
from otpme_auth.keys import GREETING, LOGIN_ANSWER

from .keys import (
    CHALLENGE_RESPONSE, CHALLENGES, DOT1X_LINK_UP, DOT1X_PENDING, HOST_DISABLED, OFFLINE_FIRST,
    OFFLINE_CHALLENGES, OFFLINE_USED_CODES, OFFLINE_USED_REPORTED, PROMPT_HINT, SMARTCARD,
    SSHAGENT_KEYS,
)

NAME = "online"
#: Verifying needs root (the host key is 0600 root): a module running as a user
#: (a screen locker) verifies through the root helper instead (docs/lockers.md).
OTPME_AUTH_NEEDS_ROOT = True
_CLIENT = Key("online.client", "the connection of this login, or None when unreachable")
_METHODS = Key("online.methods", "the pre-auth answer's methods")
_UNREACHABLE = Key("online.unreachable", "why no server could be used")
_REFUSED = Key("online.refused", "why the server refused at pre-auth (a DENY, no offline)")
#: The server's error codes that say this host may not log anyone in.
HOST_REFUSALS = ("host_disabled", "host_unknown")
USER_MESSAGE = "This host may not log you in now."
_CONFIG = Key("online.config", "the host config, or None when the host never joined")
_RESPONDER = Key("online.responder", "the plugin that will answer one of the server's "
                 "challenges (so nothing was asked), or None", str)


def _ssh_key(text):
    """'type base64' of an authorized_keys-style public key (its comment dropped)."""
    return " ".join(str(text).split()[:2])


#: The plugins that answer the server's challenges for us: (plugin, the key on which it
#: says in pre-auth what it can answer, the challenge type, can it answer this method?).
#: The answer itself comes in CHALLENGE_RESPONSE, written in credentials_collected, which
#: runs after every plugin's collect_credentials: so the line's order does not matter.
_RESPONDERS = (
    ("smartcard", SMARTCARD, "hmac", lambda card, m: m.get("slot", 2) in card.get("slots", ())),
    ("sshagent", SSHAGENT_KEYS, "ssh", lambda keys, m: _ssh_key(m.get("public_key", "")) in keys),
)


def _responder(ctx, challenges):
    """The plugin that said in pre-auth it can answer one of ``challenges``, or None."""
    for name, key, kind, can in _RESPONDERS:
        offer = ctx.stash.get(key)
        if offer and any(isinstance(m, dict) and m.get("type") == kind and can(offer, m)
                         for m in challenges):
            return name
    return None


@hookimpl
def otpme_auth_declare_options():
    return [
        seconds("connect_timeout", 3, "seconds to connect to a server (each server tried)",
                maximum=300),
        seconds("connection_timeout", 30, "seconds to wait for a server's answer", maximum=3600),
        choice("send_password", ("auto", "false"), "auto",
               "auto: send what was typed when the login needs it; false: never"),
        path("host_config", "/etc/otpme-auth/host.conf", "the host config written by otpme-auth join"),
    ]


@hookimpl
def otpme_auth_add_cli_commands(subparsers):
    from . import authkeys
    from .join import add_command
    add_command(subparsers)
    authkeys.add_command(subparsers)


def _config(options):
    from . import hostconfig
    return hostconfig.load(options.host_config)


@hookimpl
def otpme_auth_pre_auth(ctx, options):
    config = _config(options)
    ctx.stash[_CONFIG] = config
    if config is None:
        return None
    reason = config.refuses(ctx.user)
    if reason:
        raise LoginRefused(reason, "You may not log in on this host.")
    return None


def _preauth(ctx, options):
    """Connect and ask what the login needs.

    No answer in time: remember why (offline may stand in).  Any answer that is
    not ``ok`` (but a 5xx): remember the refusal; the login is refused.
    """
    from .client import BadAnswer, Client, LocalError, Unreachable
    ctx.stash[_CLIENT] = None
    config = ctx.stash.get(_CONFIG)
    if config is None:
        ctx.stash[_UNREACHABLE] = ("this host has not joined a realm (%s is missing; run "
                                   "otpme-auth join)" % options.host_config)
        return
    if ctx.stash.get(OFFLINE_FIRST):
        ctx.stash[_UNREACHABLE] = "not asked: %s" % ctx.stash[OFFLINE_FIRST]
        return
    if ctx.stash.get(DOT1X_PENDING) and not ctx.stash.get(DOT1X_LINK_UP):
        # The port is locked until 802.1x uses what the user is about to type: do not wait
        # connect_timeout for nothing; verify connects once dot1x says the link is up.
        ctx.stash[_UNREACHABLE] = "not asked: %s" % ctx.stash[DOT1X_PENDING]
        return
    client = Client(config.servers, config.ca_file, config.cert_file, config.key_file,
                    options.connect_timeout, options.connection_timeout)
    ctx.add_cleanup(client.close, NAME)  # a login that ends before verify closes it too
    try:
        client.connect()
        status, answer = _ask_preauth(ctx, client)
        if status >= 500:
            raise Unreachable("pre-auth: server error %s" % _error_text(answer, status))
    except Unreachable as exc:
        client.close()
        ctx.stash[_UNREACHABLE] = str(exc)
        if isinstance(exc, LocalError):
            ctx.log.warning(str(exc), NAME)   # this host's own problem, not the server's
        else:
            ctx.log.info("server unreachable: %s" % exc, NAME)
        return
    except BadAnswer as exc:
        client.close()
        ctx.stash[_REFUSED] = "pre-auth: unusable answer: %s" % exc
        return
    if status != 200 or answer.get("status") != "ok":
        client.close()
        ctx.stash[_REFUSED] = "pre-auth refused by %s: %s" % (client.server,
                                                              _error_text(answer, status))
        _note_host_refusal(ctx, answer)
        return
    ctx.stash[_CLIENT] = client
    ctx.stash[_METHODS] = [m for m in answer.get("methods", []) if isinstance(m, dict)]
    ctx.log.debug("pre-auth via %s: %d method(s)" % (client.server, len(ctx.stash[_METHODS])), NAME)


def _ask_preauth(ctx, client):
    """The pre-auth request, with the codes this host accepted offline (the server then
    refuses them online too; docs/protocol.md, "Codes used offline")."""
    request = {"user": ctx.user}
    used = ctx.stash.get(OFFLINE_USED_CODES)
    if used:
        request["offline_used"] = used
    status, answer = client.request("/v1/preauth", request)
    if used and status == 400 and answer.get("error") == "unknown_field":
        # A server older than this host: log in without reporting (sent again next time).
        ctx.log.warning("the server does not take reports of codes used offline; upgrade it", NAME)
        return client.request("/v1/preauth", {"user": ctx.user})
    if used and status == 200 and isinstance(answer.get("offline_used"), int):
        ctx.stash[OFFLINE_USED_REPORTED] = used
    return status, answer


def _note_host_refusal(ctx, answer):
    """``host_disabled`` / ``host_unknown``: tell offline and sessionkeep (HOST_DISABLED)."""
    error = answer.get("error")
    if error in HOST_REFUSALS:
        ctx.stash[HOST_DISABLED] = error
        ctx.log.warning("the server says this host may not log anyone in (%s); its offline "
                        "caches and kept sessions are dropped" % error, NAME)


@hookimpl
def otpme_auth_collect_credentials(ctx, options):
    if _CLIENT not in ctx.stash:  # not on the try_first_pass retry: ask the server once
        _preauth(ctx, options)
    if _REFUSED in ctx.stash:
        # The server answered: a refusal, never a reason to try the offline cache.
        raise LoginRefused(ctx.stash[_REFUSED], USER_MESSAGE)
    methods = ctx.stash.get(_METHODS, ())
    typed = [m for m in methods if m.get("password_required") or m.get("otp_len")]
    if ctx.stash.get(_CLIENT) is not None:
        # For the responder plugins (smartcard, sshagent), which answer them in
        # credentials_collected, after every plugin's collect_credentials.
        ctx.stash[CHALLENGES] = [m for m in methods if m.get("type") in ("hmac", "ssh")
                                 and isinstance(m.get("challenge_id"), str)]
        ctx.stash[_RESPONDER] = _responder(ctx, ctx.stash[CHALLENGES])
        if ctx.stash[_RESPONDER]:
            return  # a card or an agent answers: nothing to type
    elif not ctx.stash.get(DOT1X_PENDING) and _responder(ctx, ctx.stash.get(OFFLINE_CHALLENGES)
                                                         or ()):
        # No server (and none coming with 802.1x): the agent answers the offline cache's
        # challenge (docs/offline.md, "ssh tokens offline"); nothing to type.
        return
    if ctx.stash.get(_CLIENT) is None or not typed:
        # Unreachable: the offline cache needs what the user types, worded as its
        # plugin suggests (a cached second factor: "Password+OTP: ").
        prompt = ctx.stash.get(PROMPT_HINT) or "Password: "
    else:
        prompt = typed[0].get("prompt") or "Password: "
        if not isinstance(prompt, str) or len(prompt) > 80:
            prompt = "Password: "
    ctx.ask_authtok(prompt)


@hookimpl
def otpme_auth_verify(ctx, options):
    from otpme_auth import PASSWORD

    from .client import BadAnswer, Unreachable
    client = ctx.stash.get(_CLIENT)
    if client is None and ctx.stash.get(DOT1X_LINK_UP) and ctx.stash.get(DOT1X_PENDING):
        # 802.1x brought the link up after the prompt: ask the server now (once).
        del ctx.stash[DOT1X_PENDING]
        _preauth(ctx, options)
        client = ctx.stash.get(_CLIENT)
    if client is None:
        return unavailable(ctx.stash.get(_UNREACHABLE, "no server reachable"))
    request = {"user": ctx.user}
    answer = ctx.stash.get(CHALLENGE_RESPONSE)
    if answer is not None:  # a smartcard's or an ssh agent's answer to the server's challenge
        request.update(challenge_id=answer["challenge_id"], response=answer["response"].reveal())
    elif PASSWORD not in ctx.credentials:
        # A card or an agent said it would answer, then did not: never send an empty password.
        client.close()
        return deny("nothing to send: %s did not answer the server's challenge and nothing "
                    "was typed" % (ctx.stash.get(_RESPONDER) or "no responder"))
    elif options.send_password == "auto":
        request["password"] = ctx.credentials[PASSWORD].reveal()
    else:
        # send_password=false is for tokens answered by a smartcard or an ssh
        # agent (their plugins put a challenge response on the context); with
        # none, there is nothing the server could accept.
        client.close()
        return deny("send_password=false and no smartcard or ssh-agent response to send")
    try:
        status, answer = client.request("/v1/auth", request)
    except Unreachable as exc:
        return unavailable("no answer: %s" % exc)
    except BadAnswer as exc:
        return deny("unusable answer: %s" % exc, user_message=USER_MESSAGE, final=True)
    finally:
        client.close()
    if status != 200:
        if status >= 500:
            return unavailable("server error: %s" % _error_text(answer, status))
        _note_host_refusal(ctx, answer)
        return deny("refused by %s: %s" % (client.server, _error_text(answer, status)),
                    user_message=USER_MESSAGE, final=True)
    if answer.get("status") == "refused":
        reason = _printable(answer.get("reason", "refused"), 64)
        message = answer.get("message")
        return deny("refused by %s: %s" % (client.server, reason),
                    user_message=message if isinstance(message, str) else None)
    if answer.get("status") != "ok":
        return deny("unexpected answer status %s" % _printable(answer.get("status"), 32),
                    user_message=USER_MESSAGE, final=True)
    ctx.stash[LOGIN_ANSWER] = answer
    if isinstance(answer.get("greeting"), str):
        ctx.stash[GREETING] = answer["greeting"]
    return allow("accepted by %s (token %s)" % (client.server, answer.get("token", "?")))


@hookimpl
def otpme_auth_check_account(ctx, options):
    """The account phase: may ``ctx.user``'s session on this host be opened now?

    Whichever module authenticated the user (ours, an ssh key, pam_unix):
    ``DENY_LOGIN_USERS`` / ``VALID_LOGIN_USERS`` of the host config, then the
    server's answer for this user on this host (``POST /v1/account``: disabled,
    expired, host restriction, login times).  A user the realm does not know,
    or a host that never joined, is USER_UNKNOWN (left to the stack's other
    account modules); no server: UNAVAILABLE (the offline cache may stand in).
    """
    from .client import BadAnswer, Client, Unreachable
    config = _config(options)
    if config is None:
        return deny("this host has not joined a realm (%s is missing)" % options.host_config,
                    pam_code="USER_UNKNOWN")
    reason = config.refuses(ctx.user)
    if reason:
        return deny(reason, "You may not log in on this host.")
    client = Client(config.servers, config.ca_file, config.cert_file, config.key_file,
                    options.connect_timeout, options.connection_timeout)
    try:
        client.connect()
        status, answer = client.request("/v1/account", {"user": ctx.user})
    except Unreachable as exc:
        return unavailable("server unreachable: %s" % exc)
    except BadAnswer as exc:
        # The server spoke (a TLS alert: it refused this host's certificate; or an
        # answer we cannot read): a refusal, as in authenticate, never the offline stand-in.
        return deny("account: unusable answer: %s" % exc, USER_MESSAGE, pam_code="PERM_DENIED")
    finally:
        client.close()
    if status >= 500:
        return unavailable("server error: %s" % _error_text(answer, status))
    if status == 404:
        raise ConfigError("the server does not answer account checks (POST /v1/account): "
                          "upgrade it, or leave the account line out")
    if answer.get("error") in HOST_REFUSALS:
        # An answer, so a refusal: this host may not open anyone's session (offline neither);
        # offline and sessionkeep drop the caches in login_failed, as after authenticate.
        _note_host_refusal(ctx, answer)
        return deny("account refused by %s: %s" % (client.server, _error_text(answer, status)),
                    USER_MESSAGE, pam_code="PERM_DENIED")
    if status != 200:
        raise ConfigError("the server rejected the account request: %s" % _error_text(answer, status))
    result = answer.get("status")
    if result == "ok":
        return None
    if result == "unknown":
        return deny("%s is not a user of realm %s" % (ctx.user, config.realm), pam_code="USER_UNKNOWN")
    if result == "refused":
        reason = str(answer.get("reason", "refused"))[:64]
        message = answer.get("message")
        return deny("refused by %s: %s" % (client.server, reason),
                    user_message=message if isinstance(message, str) else None,
                    pam_code="ACCT_EXPIRED" if reason == "auto_disabled" else "PERM_DENIED")
    return unavailable("unexpected answer status %r" % (result,))


def _printable(value, limit):
    """Server text for a log line: one line, no control characters."""
    from otpme_auth.conversation import sanitize
    return sanitize(value, multiline=False)[:limit]


def _error_text(answer, status):
    text = answer.get("error") or answer.get("message") or ""
    if answer.get("error") and answer.get("message"):
        text = "%s (%s)" % (answer["error"], answer["message"])
    return "%s %s" % (status, _printable(text, 160))
