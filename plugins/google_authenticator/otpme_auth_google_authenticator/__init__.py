"""google_authenticator: TOTP/HOTP codes from a google-authenticator secret file.

Enable it on a PAM line with the bare word ``google_authenticator``::

    auth required pam_python.so pam_otpme_auth.py google_authenticator nullok

The options and their meaning are those of pam_google_authenticator.so (seed
003); the file format is the peer's (:mod:`.secretfile`), the verification its
rules (:mod:`.gaverify`).  What we do better: every read-modify-write of the
file happens under an exclusive lock and is replaced atomically
(:mod:`otpme_auth.statefile`), so concurrent logins with one code give exactly
one success; no symlink is followed anywhere in the path; a full or read-only
filesystem is named in the log and never truncates the file.

One login, in order (the peer's):

1. ``collect_credentials``: find the file; under the lock, check the grace
   period (a hit allows without a prompt), then the rate limit (before any
   prompt; the attempt is recorded), then prompt (unless ``nullok`` and the user
   has no file: then nothing is asked and the plugin abstains, PAM_IGNORE).
2. ``verify``: re-read the file under the lock, decide on *that* state, write
   the new state (reuse list, counter, skew, scratch codes) before unlocking.

Stdlib only at module level: this runs on the login path.
"""

import os
import time

from otpme_auth import (ONE_TIME_CODE, ConfigError, Key, Secret, StateFileError, abstain, allow,
                        deny, flag, hookimpl, integer, octal_mode, path, text)
from otpme_auth.statefile import StateFile

from . import gaverify
from .secretfile import SecretFile, SecretFileError

NAME = "google_authenticator"
DEFAULT_SECRET = "~/.google_authenticator"
CODE_PROMPT = "Verification code: "
PWCODE_PROMPT = "Password & verification code: "

# What collect_credentials found, for verify (one login's state, never a global).
_STATE = Key("google_authenticator.state", "collect -> verify: how this login stands")
_FILE = Key("google_authenticator.file", "collect -> verify: (path, owner uid or None)")
_UNRECORDED = Key("google_authenticator.unrecorded",
                  "collect -> verify: the rate-limit attempt could not be written")
_HOTP_FAILED = Key("google_authenticator.hotp_failed",
                   "try_first_pass: the stacked attempt failed a HOTP code")

# _STATE values.
NO_FILE_IGNORED = "nullok-no-file"   # nullok and no file: abstain, no prompt
UNUSABLE = "unusable"                # unknown user, no file, bad file: prompt, then deny
RATE_LIMITED = "rate-limited"        # refused before the prompt
GRACE = "grace"                      # grace_period hit: allowed without a prompt
READY = "ready"                      # a code was asked for
FINAL_DENY = "final-deny"            # try_first_pass: the stacked code was refused for good


@hookimpl
def otpme_auth_declare_options():
    """The peer's options; debug, *_first_pass, forward_pass, nullok, authtok_prompt and
    echo_verification_code are the core's and are read from ``ctx.core``."""
    return [
        path("secret", DEFAULT_SECRET,
             "the secret file; ${USER}, ${HOME} and ~ are expanded (default ~/.google_authenticator)",
             placeholders=("~", "${HOME}", "${USER}")),
        text("user", None, "do file operations as this user (name or uid): the file must be theirs"),
        flag("no_strict_owner", "do not check that the secret file is owned by the user"),
        octal_mode("allowed_perm", 0o600, "mode bits the secret file may have (default 0600)"),
        flag("noskewadj", "do not learn the clock skew of the user's device (TOTP)"),
        flag("no_increment_hotp", "do not advance the HOTP counter after a failed code"),
        integer("grace_period", 0, "seconds after a successful login from the same remote host "
                "during which no code is asked (0: off)", maximum=10 ** 9),
        flag("allow_readonly", "accept a valid code even when the file cannot be updated "
             "(read-only or full filesystem); logged"),
    ]


# -- where the file is ----------------------------------------------------------------

def _fixed_uid(options):
    """``user=``: a uid, or a user name looked up now (the peer's parse_user)."""
    name = options.user
    if name is None:
        return None
    if name.isdigit() and int(name) <= 0x7FFFFFFF:
        return int(name)
    import pwd
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        raise ConfigError("user=%s: no such user" % name) from None


def secret_location(user, options):
    """``(path, owner_uid)`` of ``user``'s secret file, or ``(None, reason)``.

    ``~`` (at the start of a path component) and ``${HOME}`` are the user's home,
    ``${USER}`` the user name, expanded left to right once as the peer does.
    """
    spec = options.secret
    # The passwd entry only when something needs it (the home, or the owner): user=
    # and a path without ~ or ${HOME} need no NSS lookup.
    pw = _passwd(user) if options.user is None or "~" in spec or "${HOME}" in spec else None
    out = []
    i = 0
    allow_tilde = True
    while i < len(spec):
        if allow_tilde and spec[i] == "~" or spec.startswith("${HOME}", i):
            if pw is None or not pw.pw_dir.startswith("/"):
                return None, "no such user or no home directory"
            out.append(pw.pw_dir)
            i += 1 if spec[i] == "~" else 7
            allow_tilde = False
        elif spec.startswith("${USER}", i):
            out.append(user)
            i += 7
            allow_tilde = False
        else:
            allow_tilde = spec[i] == "/"
            out.append(spec[i])
            i += 1
    filename = "".join(out)
    if not filename.startswith("/") or "/../" in filename + "/" or "\0" in filename:
        return None, "the secret file path %r is not absolute or has '..'" % filename
    fixed = _fixed_uid(options)
    if fixed is not None:
        return filename, fixed
    if pw is None:
        return None, "no such user"
    return filename, pw.pw_uid


def _passwd(user):
    import pwd
    try:
        return pwd.getpwnam(user)
    except KeyError:
        return None


def _open(path_, owner, options):
    """A locked StateFile for the secret file (use in ``with``)."""
    return StateFile.lock(path_, owner=None if options.no_strict_owner else owner,
                          # The peer ignores the setuid bit (mode & 03777).
                          allowed_mode=options.allowed_perm | 0o4000)


def _parse(data):
    return SecretFile.parse(data)


# -- hooks ------------------------------------------------------------------------------

@hookimpl
def otpme_auth_collect_credentials(ctx, options):
    """Grace period, rate limit (before the prompt), then ask for the code.

    In the try_first_pass retry round only the prompt is repeated.
    """
    state = ctx.stash.get(_STATE)
    if state is None:
        state = _prepare(ctx, options)
        ctx.stash[_STATE] = state
    if state in (NO_FILE_IGNORED, RATE_LIMITED, GRACE, FINAL_DENY):
        return None
    core = ctx.core
    prompt = PWCODE_PROMPT if core.forward_pass else CODE_PROMPT
    ctx.ask_authtok(prompt, key=ONE_TIME_CODE, echo=core.echo_verification_code, share=False)
    return None


def _prepare(ctx, options):
    log = ctx.log
    if options.allowed_perm == 0:
        raise ConfigError("allowed_perm=0 would refuse every file: give a mode such as 0600")
    log.debug("start of google_authenticator for %s" % ctx.user, NAME)
    filename, owner = secret_location(ctx.user, options)
    if filename is None:
        log.error("cannot locate the secret file of %s: %s" % (ctx.user, owner), NAME)
        return UNUSABLE
    ctx.stash[_FILE] = (filename, owner)
    try:
        with _open(filename, owner, options) as sf:
            if sf.data is None:
                if ctx.core.nullok:
                    log.info("%s has no secret file %s; ignored (nullok)" % (ctx.user, filename), NAME)
                    return NO_FILE_IGNORED
                log.error("%s has no secret file %s" % (ctx.user, filename), NAME)
                return UNUSABLE
            current = _parse(sf.data)
            now = time.time()
            allowed, early = gaverify.rate_limit_check(current, now)
            if options.grace_period and gaverify.within_grace_period(
                    current, ctx.rhost, now, options.grace_period):
                # Not a code attempt, so not counted against the rate limit (as the peer).
                log.info("within grace period: %s from %s" % (ctx.user, ctx.rhost), NAME)
                return GRACE
            if early is not None and not _write(ctx, options, sf, early, "rate limit"):
                # An attempt the limit does not count: refuse (unless allow_readonly),
                # or a full disk would lift the rate limit.
                ctx.stash[_UNRECORDED] = True
            if not allowed:
                log.error("too many attempts for %s (RATE_LIMIT); no prompt" % ctx.user, NAME)
                return RATE_LIMITED
    except (StateFileError, SecretFileError) as exc:
        if _readonly_fallback(exc, filename, options):
            return _prepare_readonly(ctx, options, filename, owner)
        if ctx.core.nullok and not os.path.lexists(os.path.dirname(filename)):
            # No directory, so no file (the peer's open() fails with ENOENT too).
            log.info("%s has no secret file %s; ignored (nullok)" % (ctx.user, filename), NAME)
            return NO_FILE_IGNORED
        log.error("cannot use the secret file of %s: %s" % (ctx.user, exc), NAME)
        return UNUSABLE
    return READY


def _prepare_readonly(ctx, options, filename, owner):
    """allow_readonly on a read-only filesystem: read without the lock (nothing can change)."""
    from otpme_auth import statefile
    try:
        data = statefile.read(filename, None if options.no_strict_owner else owner,
                              options.allowed_perm | 0o4000)
        if data is None:
            return NO_FILE_IGNORED if ctx.core.nullok else UNUSABLE
        allowed, _ = gaverify.rate_limit_check(_parse(data), time.time())
    except (StateFileError, SecretFileError) as exc:
        ctx.log.error("cannot use the secret file of %s: %s" % (ctx.user, exc), NAME)
        return UNUSABLE
    ctx.log.warning("%s is on a read-only filesystem: no state can be recorded "
                    "(allow_readonly)" % filename, NAME)
    return READY if allowed else RATE_LIMITED


def _readonly_fallback(exc, filename, options):
    """True when the lock failed only because the filesystem is read-only (allow_readonly)."""
    if not options.allow_readonly or not isinstance(exc, StateFileError):
        return False
    try:
        return bool(os.statvfs(os.path.dirname(filename)).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _write(ctx, options, sf, new_state, what):
    """Replace the file (atomic, under the lock we hold).  False if it could not be written."""
    try:
        sf.replace(new_state.serialize())
    except StateFileError as exc:
        ctx.log.error("could not record the %s: %s" % (what, exc), NAME)
        ctx.tell_user("Error while writing the one-time-code state; ask your administrator.")
        return False
    ctx.log.debug("%s written (%s)" % (sf.path, what), NAME)
    return True


@hookimpl
def otpme_auth_verify(ctx, options):
    """Check the code against the file as it is now, under the lock, and record the result.

    ALLOW for a valid code (or a grace-period hit), ABSTAIN for a user without a
    file under ``nullok`` (PAM_IGNORE), DENY otherwise.  A valid code whose
    update cannot be written is refused unless ``allow_readonly``.
    """
    state = ctx.stash.get(_STATE)
    if state == NO_FILE_IGNORED:
        return abstain("no secret file (nullok)")
    if state == GRACE:
        return allow("within the grace period")
    if state == RATE_LIMITED:
        return deny("rate limited", "Too many attempts; try again later.")
    if state == FINAL_DENY:
        return deny("the code from the stack was refused for good", "Invalid verification code.")
    code = ctx.credentials.get(ONE_TIME_CODE)
    if state != READY or code is None:
        if code is not None:
            _spend_time(code, options)
        return deny("no usable secret file" if state == UNUSABLE else "no code was given")
    filename, owner = ctx.stash[_FILE]
    core = ctx.core
    stacked = code.source == "stack"
    # The peer lets a password precede the code when it comes from the stack or
    # with forward_pass; a prompted code alone must be just the code.
    allow_prefix = stacked or core.forward_pass
    kwargs = dict(noskewadj=options.noskewadj, no_increment_hotp=options.no_increment_hotp,
                  allow_prefix=allow_prefix, hotp_failed_before=ctx.stash.get(_HOTP_FAILED, False))
    retry_follows = stacked and core.try_first_pass and ctx.first_pass_allowed
    now = time.time()
    try:
        with _open(filename, owner, options) as sf:
            if sf.data is None:
                return deny("the secret file %s disappeared" % filename)
            current = _parse(sf.data)
            result = gaverify.verify(current, code.reveal(), now, **kwargs)
            if retry_follows and not result.final:
                # The peer discards this attempt's state and prompts; the HOTP
                # failure is carried to the prompted attempt.
                ctx.stash[_HOTP_FAILED] = result.hotp_failed
                return deny("the password from the stack holds no valid code (%s)" % result.reason)
            new = result.new_state
            if result.ok and options.grace_period:
                new = gaverify.record_login(new or current, ctx.rhost, now) or new
            written = new is None or _write(ctx, options, sf, new, "login")
    except (StateFileError, SecretFileError) as exc:
        if not _readonly_fallback(exc, filename, options):
            ctx.log.error("cannot use the secret file of %s: %s" % (ctx.user, exc), NAME)
            return deny("unusable secret file")
        return _verify_readonly(ctx, options, filename, owner, code, kwargs, now)
    return _decide(ctx, options, result, written, retry_follows)


def _spend_time(code, options):
    """Check the code against a throw-away secret, so no file takes as long as a wrong code."""
    dummy = SecretFile.build(os.urandom(16))
    gaverify.verify(dummy, code.reveal(), time.time(), noskewadj=options.noskewadj, allow_prefix=True)


def _verify_readonly(ctx, options, filename, owner, code, kwargs, now):
    from otpme_auth import statefile
    try:
        data = statefile.read(filename, None if options.no_strict_owner else owner,
                              options.allowed_perm | 0o4000)
        result = gaverify.verify(_parse(data), code.reveal(), now, **kwargs)
    except (StateFileError, SecretFileError, TypeError) as exc:
        ctx.log.error("cannot use the secret file of %s: %s" % (ctx.user, exc), NAME)
        return deny("unusable secret file")
    return _decide(ctx, options, result, result.new_state is None, False)


def _decide(ctx, options, result, written, retry_follows):
    written = written and not ctx.stash.get(_UNRECORDED, False)
    if result.ok and not written:
        if not options.allow_readonly:
            return deny("valid code, but the new state could not be written: refused "
                        "(the code could be used again)")
        ctx.log.warning("accepting %s although the new state could not be written "
                        "(allow_readonly): this code can be used again" % ctx.user, NAME)
    if result.ok:
        if ctx.core.forward_pass:
            ctx.forward_authtok(Secret(result.password or "", "plugin"))
        return allow("valid %s code" % result.reason)
    if retry_follows:
        # A hard failure of the stacked code (reuse, skew learning): the peer
        # does not prompt then, so neither does the retry round.
        ctx.stash[_STATE] = FINAL_DENY
    return deny("invalid verification code (%s)" % result.reason, "Invalid verification code.")


@hookimpl
def otpme_auth_add_cli_commands(subparsers):
    """``otpme-auth enroll totp|hotp``: create a secret file as google-authenticator(1) does."""
    from .enroll import add_commands  # CLI only: never on the login path
    add_commands(subparsers)
