"""The PAM calls as flows of hooks; one place maps outcomes to PAM codes.

Each function takes a :class:`~otpme_auth.host.Host` and a
:class:`~otpme_auth.context.LoginContext` and returns a PAM code name
(``"SUCCESS"``, ``"AUTH_ERR"``, ...).  Nothing here returns SUCCESS on an
exception: a plugin that raises fails the call closed.
"""

from .errors import ConfigError, ConversationError, LoginRefused, OtpmeAuthError, PluginError
from .results import Verdict, as_decision, combine, deny, pam_code_for


def authenticate(host, ctx):
    """pam_sm_authenticate: pre-auth, credentials, verify, then post-login or login_failed."""
    log = ctx.log
    try:
        verdict, decisions = _decide(host, ctx)
    except LoginRefused as exc:
        decision = deny(exc.reason, exc.user_message)
        decision.plugin = getattr(exc, "plugin", None)
        return _failed(host, ctx, Verdict.DENY, [decision])
    except ConversationError as exc:
        # No answer to a prompt: the user gave up (sudo's retry prompt at end of
        # input, a closed ssh client, Escape in a greeter) or the application
        # cannot ask.  Not an error of ours: logged as what it is, at info level.
        ctx.log.info("authentication of %s ended: no answer to the prompt (the user gave up, "
                     "or the application cannot ask): %s" % (_who(ctx), exc))
        decision = deny("no answer to the prompt")
        decision.plugin = getattr(exc, "plugin", None)
        _notify_failed(host, ctx, decision)
        return exc.pam_code
    except OtpmeAuthError as exc:
        decision = deny(str(exc))
        decision.plugin = getattr(exc, "plugin", None)
        return _failed(host, ctx, Verdict.DENY, [decision], code=exc.pam_code, error=exc)
    if ctx.core.gate and verdict is Verdict.ABSTAIN:
        # A gate never grants: the next module in the stack authenticates.
        log.info("gate: nothing against %s; the stack decides" % _who(ctx))
        return "IGNORE"
    if verdict is not Verdict.ALLOW:
        return _failed(host, ctx, verdict, decisions)
    ctx.verified_by = tuple(d.plugin for d in decisions)
    try:
        host.post_login(ctx)
    except OtpmeAuthError as exc:
        log.error("login of %s refused after verification: %s" % (ctx.user, exc),
                  getattr(exc, "plugin", None))
        decision = deny("post-login failed: %s" % exc, getattr(exc, "user_message", None))
        decision.plugin = getattr(exc, "plugin", None)
        _notify_failed(host, ctx, decision)
        return exc.pam_code if isinstance(exc, PluginError) else "AUTH_ERR"
    log.info("authenticated %s%s (by %s)" % (
        _who(ctx), " offline" if ctx.offline else "", ", ".join(ctx.verified_by)))
    return "SUCCESS"


def _decide(host, ctx):
    for name, result in host.pre_auth(ctx):
        if result is None:
            continue
        decision = as_decision(result, name)
        if decision.verdict is not Verdict.DENY:
            raise PluginError(name, "pre_auth may return only None or a DENY decision, not %r"
                              % decision.verdict)
        return Verdict.DENY, [decision]
    if ctx.core.gate:
        return Verdict.ABSTAIN, []
    if not host.implementers("otpme_auth_verify"):
        raise ConfigError("this line enables no verifier: name the plugin that checks the "
                          "credentials, or write gate if the line only checks "
                          "(pre-auth, account) and another module authenticates")
    has_fallback = bool(host.implementers("otpme_auth_verify_fallback"))
    for attempt in (1, 2):
        host.collect_credentials(ctx)
        host.credentials_collected(ctx)
        primary = [as_decision(r, n) for n, r in host.verify(ctx)]
        fallback_used = []

        def fallback(missing):
            fallback_used.append(True)
            return [as_decision(r, n) for n, r in
                    host.verify_fallback(ctx, missing)]

        verdict, decisions, _ = combine(primary, fallback if has_fallback else None)
        ctx.decisions = primary + [d for d in decisions if d not in primary]
        ctx.offline = bool(fallback_used) and verdict is Verdict.ALLOW
        if (verdict is Verdict.DENY and attempt == 1 and ctx.core.try_first_pass
                and ctx.used_stacked_credentials() and not any(d.final for d in decisions)):
            ctx.log.info("try_first_pass: the password from the stack was not accepted; asking")
            ctx.forget_stacked_credentials()
            continue
        return verdict, decisions
    raise AssertionError("unreachable")


def _failed(host, ctx, verdict, decisions, code=None, error=None):
    decision = decisions[0] if decisions else deny("no verifier decided")
    if error is None:
        ctx.log.info("authentication of %s failed: %s%s%s" % (
            _who(ctx), verdict.name, " by %s" % decision.plugin if decision.plugin else "",
            ": %s" % decision.reason if decision.reason else ""))
    else:
        ctx.log.error("authentication of %s failed closed: %s" % (
            _who(ctx), getattr(error, "detail", error)), getattr(error, "plugin", None))
    _notify_failed(host, ctx, decision)
    return code or pam_code_for(verdict, decisions)


def _who(ctx):
    """The user, and where from when the application said (PAM_RHOST), for the log."""
    return "%s from %s" % (ctx.user, ctx.rhost) if ctx.rhost else ctx.user


def _notify_failed(host, ctx, decision):
    try:
        host.login_failed(ctx, decision)
    except Exception as exc:  # it cannot change the outcome; say so and go on
        ctx.log.error("login_failed hook failed: %s" % exc, getattr(exc, "plugin", None))


def setcred(host, ctx, action):
    """pam_sm_setcred."""
    if not host.implementers("otpme_auth_setcred"):
        return "SUCCESS"
    try:
        host.setcred(ctx, action)
    except OtpmeAuthError as exc:
        ctx.log.error("setcred (%s) failed: %s" % (action, exc), getattr(exc, "plugin", None))
        return "CRED_ERR"
    return "SUCCESS"


def check_account(host, ctx):
    """pam_sm_acct_mgmt: may the user's session be opened now?

    Each plugin answers ``None`` (nothing against it), a DENY (refused: its
    ``pam_code``, PERM_DENIED by default; ``USER_UNKNOWN`` means "not a user I
    know", which a stack can ignore), UNAVAILABLE (could not check: no server),
    an ALLOW that stands in for the checks that were unavailable (the offline
    cache, which the server filled at the user's last online login), or ABSTAIN
    (the stand-in has nothing of this user).  A refusal wins at once, and the
    plugins learn it in ``login_failed`` (a host refusal drops caches there).  A check
    left unavailable: an ALLOW stands in (SUCCESS); else an ABSTAIN or
    USER_UNKNOWN makes it USER_UNKNOWN (nothing is known of the user here, as
    SSSD offline); else it fails closed (AUTHINFO_UNAVAIL).  USER_UNKNOWN
    answers alone give USER_UNKNOWN; ABSTAIN alone changes nothing.
    """
    if not host.implementers("otpme_auth_check_account"):
        return "IGNORE"
    who = _who(ctx)
    unknown, missing, standing_in, nothing_known = [], [], [], []
    try:
        for name, result in host.check_account(ctx):
            if result is None:
                continue
            decision = as_decision(result, name)
            if decision.verdict is Verdict.DENY and decision.pam_code == "USER_UNKNOWN":
                unknown.append(decision)
            elif decision.verdict is Verdict.DENY:
                ctx.log.info("account of %s refused: %s" % (who, decision.reason), name)
                # The plugins learn it as a failed login: a server's refusal of this host
                # heard only here (an ssh-key login) drops the host's caches too.
                _notify_failed(host, ctx, decision)
                return decision.pam_code or "PERM_DENIED"
            elif decision.verdict is Verdict.UNAVAILABLE:
                missing.append(decision)
            elif decision.verdict is Verdict.ALLOW:
                standing_in.append(decision)
            else:
                nothing_known.append(decision)  # ABSTAIN: nothing cached of this user
    except LoginRefused as exc:
        ctx.log.info("account of %s refused: %s" % (who, exc.reason), getattr(exc, "plugin", None))
        decision = deny(exc.reason, exc.user_message)
        decision.plugin = getattr(exc, "plugin", None)
        _notify_failed(host, ctx, decision)
        return "PERM_DENIED"
    except OtpmeAuthError as exc:
        ctx.log.error("account check failed closed: %s" % exc, getattr(exc, "plugin", None))
        return exc.pam_code
    if missing and not standing_in and (unknown or nothing_known):
        # No server, and the stand-in knows nothing of this user: as SSSD offline with
        # a user it never cached, the realm has nothing to say (a local user, say).
        ctx.log.info("account of %s: not ours to decide (%s)" % (
            who, "; ".join("%s: %s" % (d.plugin, d.reason)
                           for d in missing + unknown + nothing_known)))
        return "USER_UNKNOWN"
    if missing and not standing_in:
        ctx.log.info("account of %s refused: could not be checked: %s" % (
            who, "; ".join("%s: %s" % (d.plugin, d.reason) for d in missing)))
        return "AUTHINFO_UNAVAIL"
    if missing:
        ctx.log.info("account of %s accepted offline: %s" % (
            who, "; ".join("%s: %s" % (d.plugin, d.reason) for d in standing_in)))
        return "SUCCESS"
    if unknown:
        ctx.log.info("account of %s: not ours to decide (%s)" % (
            who, "; ".join("%s: %s" % (d.plugin, d.reason) for d in unknown)))
        return "USER_UNKNOWN"
    ctx.log.debug("account of %s accepted" % who)
    return "SUCCESS"


def open_session(host, ctx):
    """pam_sm_open_session: plugins in line order; the first failure stops it."""
    try:
        host.open_session(ctx)
    except OtpmeAuthError as exc:
        ctx.log.error("open_session failed: %s" % exc, getattr(exc, "plugin", None))
        return "SESSION_ERR"
    return "SUCCESS"


def close_session(host, ctx):
    """pam_sm_close_session: reverse line order; every plugin is called."""
    errors = []
    host.close_session(ctx, errors)
    for exc in errors:
        ctx.log.error("close_session failed: %s" % exc, getattr(exc, "plugin", None))
    return "SESSION_ERR" if errors else "SUCCESS"
