"""webauth: a one-time code validated by a WebAuth user-information service (seed 002).

Enable it with the bare word ``webauth``; it is usually stacked after a module
that checks the first factor::

    auth required pam_unix.so
    auth required pam_python.so pam_otpme_auth.py webauth command=webkdc host=userinfo.example.org

The user types a code; the plugin calls ``COMMAND webkdc-validate USER IP CODE``
on ``host`` over remctl (Kerberos; :mod:`.remctl`, in process: the code is never
in an argv) and reads the XML reply strictly (:mod:`.reply`):

========================================  ==============================================
reply                                     verdict (PAM code alone on the line)
========================================  ==============================================
``<success>yes</success>``                ALLOW (PAM_SUCCESS)
``<success>no</success>``                 DENY (PAM_AUTH_ERR)
service error: connection, Kerberos,      UNAVAILABLE (PAM_AUTHINFO_UNAVAIL): the line
remctl error, non-zero exit, timeout      decides what a stack does then
a reply that does not parse               DENY, fail closed, with a log line saying why
========================================  ==============================================

Options (pam_webauth_otp's names) come from the PAM line or from krb5.conf
``[appdefaults]`` (:mod:`.krb5conf`); the line wins.  Only the authentication
stack does something: setcred and the session calls are no-ops that say so
in debug, and the account stack is left to others (PAM_IGNORE).

Stdlib only at module level: the Kerberos binding (``gssapi``) and the XML
parser (``defusedxml``) load when a code is checked.
"""

from otpme_auth import (ONE_TIME_CODE, ConfigError, Key, allow, deny, hookimpl, integer, path,
                        seconds, text, unavailable)

NAME = "webauth"
PROMPT = "One-time password: "
DEFAULTS = {"keytab": "/etc/krb5.keytab", "port": None, "principal": None, "timeout": 30.0}
OPTIONS = ("command", "host", "principal", "keytab", "port", "timeout")
MAX_MESSAGE = 200


def _options():
    return [
        text("command", None, "the user-information service's command prefix (WebKdcUserInfoURL's "
             "last component); required, on the line or in krb5.conf"),
        text("host", None, "the host of the user-information service (remctl); required, on the "
             "line or in krb5.conf"),
        text("principal", None, "the service's principal (default: host/HOST as remctl derives it)"),
        path("keytab", None, "the client keytab; its first principal is the client "
             "(default /etc/krb5.keytab)"),
        integer("port", None, "the remctl port (default: 4373, then the legacy 4444)",
                minimum=1, maximum=65535),
        seconds("timeout", None, "seconds to wait for the service (default 30)", maximum=3600),
    ]


@hookimpl
def otpme_auth_declare_options():
    """pam_webauth_otp's options; none has a default here, so krb5.conf can supply it."""
    return _options()


class Settings:
    """The effective settings: the line, else krb5.conf, else the default."""

    __slots__ = OPTIONS + ("origins",)

    def __init__(self, values, origins):
        for name in OPTIONS:
            setattr(self, name, values[name])
        self.origins = origins


SETTINGS = Key("webauth.settings", "pre_auth -> verify: the effective settings", Settings)


def settings(options, krb5_values=None):
    """Merge the line's options with krb5.conf ``[appdefaults]``; ConfigError on bad values."""
    from . import krb5conf
    if krb5_values is None:
        try:
            krb5_values = krb5conf.appdefaults()
        except krb5conf.Krb5ConfError as exc:
            raise ConfigError("krb5.conf: %s" % exc) from None
    declared = {o.name: o for o in _options()}
    values, origins = {}, {}
    for name in OPTIONS:
        if options.given(name):
            values[name], origins[name] = options[name], "the PAM line"
        elif name in krb5_values:
            raw, where = krb5_values[name]
            try:
                values[name] = declared[name].parse(raw)
            except ValueError as exc:
                raise ConfigError("bad value for %s in krb5.conf [appdefaults] (%s): %s (got %r)"
                                  % (name, where, exc, raw[:60])) from None
            origins[name] = where
        else:
            values[name], origins[name] = DEFAULTS.get(name), "default"
    for name in ("command", "host"):
        if values[name] is None:
            raise ConfigError("webauth needs %s= (on the PAM line, or in krb5.conf [appdefaults] "
                              "pam-webauth-otp)" % name)
    if values["timeout"] <= 0:
        raise ConfigError("bad value for timeout: must be more than 0 seconds")
    return Settings(values, origins)


@hookimpl
def otpme_auth_pre_auth(ctx, options):
    """Read krb5.conf and check the settings before anything is asked."""
    conf = settings(options)
    ctx.stash[SETTINGS] = conf
    if ctx.core.debug:
        ctx.log.debug("webauth settings: " + ", ".join(
            "%s=%s (%s)" % (n, getattr(conf, n), conf.origins[n]) for n in OPTIONS), NAME)
    return None


@hookimpl
def otpme_auth_collect_credentials(ctx, options):
    """Ask for the code (first-pass options of the line apply; never shared onward)."""
    ctx.ask_authtok(PROMPT, key=ONE_TIME_CODE, echo=ctx.core.echo_verification_code, share=False)
    return None


@hookimpl
def otpme_auth_verify(ctx, options):
    """Call webkdc-validate and decide from its reply."""
    from . import remctl
    from .reply import ReplyError, parse

    conf = ctx.stash.get(SETTINGS) or settings(options)
    code = ctx.credentials.get(ONE_TIME_CODE)
    if code is None or not code:
        return deny("no one-time code")
    secret = code.reveal()
    if any(c.isspace() or not c.isprintable() for c in secret) or len(secret) > 256:
        return deny("the code has characters no one-time code has", "Invalid code.")
    command = [conf.command, "webkdc-validate", ctx.user, _client_ip(ctx.rhost), secret]
    where = "%s%s" % (conf.host, "" if conf.port is None else ":%d" % conf.port)
    try:
        result = remctl.call(conf.host, command, port=conf.port, principal=conf.principal,
                             keytab=conf.keytab, timeout=conf.timeout)
    except remctl.RemctlMissing as exc:
        raise ConfigError(str(exc)) from None
    except remctl.RemctlTimeout as exc:
        ctx.log.error("the user-information service %s did not answer in %gs: %s"
                      % (where, conf.timeout, exc), NAME)
        return unavailable("user-information service timed out")
    except remctl.RemctlError as exc:
        ctx.log.error("cannot validate the code of %s with %s: %s" % (ctx.user, where, exc), NAME)
        return unavailable("user-information service unavailable")
    if result.status != 0:
        first = result.stderr.decode("utf-8", "replace").strip().splitlines()[:1]
        ctx.log.error("the user-information service %s failed (exit status %d): %s" % (
            where, result.status, _clean(first[0]) if first else "no message"), NAME)
        return unavailable("user-information service error")
    try:
        answer = parse(result.stdout, ctx.user)
    except ReplyError as exc:
        ctx.log.error("refusing %s: the reply of %s webkdc-validate does not parse: %s"
                      % (ctx.user, where, exc), NAME)
        return deny("unparseable user-information reply", "Invalid code.")
    message = _clean(answer.user_message) if answer.user_message else None
    if answer.success:
        ctx.log.debug("%s: code accepted by %s (factors %s, loa %s)" % (
            ctx.user, where, ",".join(answer.factors) or "-", answer.loa), NAME)
        if message:
            ctx.tell_user(message)
        return allow("code accepted by the user-information service")
    ctx.log.info("%s: code refused by the user-information service %s" % (ctx.user, where), NAME)
    return deny("code refused by the user-information service", message or "Invalid code.")


def _client_ip(rhost):
    """PAM_RHOST when it is an address (what the service expects), else 127.0.0.1 as WebAuth does."""
    if rhost:
        import ipaddress
        try:
            return str(ipaddress.ip_address(rhost))
        except ValueError:
            pass
    return "127.0.0.1"


def _clean(text):
    """Server text made safe for a terminal and a log: printable, one line, bounded."""
    out = "".join(c if c.isprintable() else " " for c in text)
    return " ".join(out.split())[:MAX_MESSAGE]


def _noop(ctx, what):
    ctx.log.debug("webauth only provides authentication (seed 002): %s does nothing" % what, NAME)


@hookimpl
def otpme_auth_setcred(ctx, options, action):
    """A no-op (seed 002: auth stack only), said in debug."""
    _noop(ctx, "setcred (%s)" % action)


@hookimpl
def otpme_auth_open_session(ctx, options):
    """A no-op, said in debug."""
    _noop(ctx, "open_session")


@hookimpl
def otpme_auth_close_session(ctx, options):
    """A no-op, said in debug."""
    _noop(ctx, "close_session")
