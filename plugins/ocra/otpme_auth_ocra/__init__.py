"""ocra: RFC 6287 OCRA challenge-response, with pam_ocra's options (seed 004).

Enable it on a PAM line with the bare word ``ocra``::

    auth required pam_python.so pam_otpme_auth.py ocra nodata=succeed fake_prompt=OCRA-1:HOTP-SHA1-6:QN06-PSHA1

The user's credential file is ``~/.ocra``, or ``<dir>/<user>`` with ``dir=``
(format: :mod:`.credfile`).  One login: a random challenge in the suite's
format is shown with the response prompt (``cmsg``/``rmsg``, :mod:`.prompts`);
the response is checked under the file's lock against the file as it is then;
a success moves the counter (``C`` suites), a response made with the kill PIN
disables the credential; both are written atomically before the lock is let go.

Users without a file (``nodata``), with the seed's return codes:

==========================  =====================================================
``nodata=fail`` (default)   no prompt, PAM_AUTHINFO_UNAVAIL (logged)
``fail`` + ``fake_prompt``  a fake challenge, then PAM_AUTH_ERR
``succeed``                 PAM_SUCCESS (after a fake challenge with ``fake_prompt``)
``ignore``                  PAM_IGNORE (after a fake challenge with ``fake_prompt``)
==========================  =====================================================

A fake challenge is made by the same function as a real one, shown with the
same prompts, and its response is checked against a throw-away credential of
the same suite, so it takes about as long.

Stdlib only at module level: this runs on the login path.
"""

import os
import time

from otpme_auth import (ConfigError, Key, StateFileError, abstain, allow, choice, deny, hookimpl,
                        path, text, unavailable)
from otpme_auth.statefile import StateFile, read

from . import credfile
from .prompts import build_prompt

NAME = "ocra"
HOME_FILE = ".ocra"

RESPONSE = Key("ocra.response", "the user's answer to the OCRA challenge")
_LOGIN = Key("ocra.login", "collect -> verify: (kind, path, owner, challenge, suite)")

# kinds
REAL = "real"
FAKE = "fake"          # no data, fake_prompt: a challenge for show
NODATA = "nodata"      # no data, no fake_prompt: nothing asked
BROKEN = "broken"      # a file we cannot use: refused (logged)


@hookimpl
def otpme_auth_declare_options():
    """pam_ocra's options: dir, nodata, fake_prompt, cmsg, rmsg."""
    return [
        path("dir", None, "directory of credential files named after the user (default: ~/.ocra)"),
        choice("nodata", ("fail", "succeed", "ignore"), "fail",
               "users without a credential file: fail (PAM_AUTHINFO_UNAVAIL, or PAM_AUTH_ERR with "
               "fake_prompt), succeed (PAM_SUCCESS) or ignore (PAM_IGNORE)"),
        text("fake_prompt", None, "an OCRA suite: show users without data fake challenges of it"),
        text("cmsg", None, "the challenge prompt (%c %Nc %u %l %%); default 'OCRA Challenge: %4c'",
             allow_empty=True),
        text("rmsg", None, "the response prompt (%c %Nc %u %l %%); default 'OCRA Response: '",
             allow_empty=True),
    ]


def credential_path(user, options):
    """``(path, owner uid or None)``; ``(None, reason)`` when the user can have no file."""
    if not user or "/" in user or user in (".", "..") or "\0" in user:
        return None, "the user name cannot name a file"
    import pwd
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        pw = None
    if options.dir is not None:
        return os.path.join(options.dir, user), (pw.pw_uid if pw else None)
    if pw is None or not pw.pw_dir.startswith("/"):
        return None, "no such user or no home directory"
    return os.path.join(pw.pw_dir, HOME_FILE), pw.pw_uid


def _owner_of(filename, user_uid):
    """The owner the file must have: root or the user (checked again on the open file)."""
    try:
        uid = os.stat(filename, follow_symlinks=False).st_uid
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateFileError("cannot examine %s: %s" % (filename, exc.strerror)) from None
    if uid != 0 and uid != user_uid:
        raise StateFileError("%s must be owned by root or the user, not uid %d" % (filename, uid))
    return uid


def _fake_suite(options):
    from otpme_auth.otp import OtpError
    from otpme_auth.otp.ocra import parse_suite
    try:
        return parse_suite(options.fake_prompt)
    except OtpError as exc:
        raise ConfigError("fake_prompt=%s: %s" % (options.fake_prompt, exc)) from None


@hookimpl
def otpme_auth_pre_auth(ctx, options):
    """Check ``fake_prompt`` before anything is asked: a bad suite is a config error."""
    if options.fake_prompt is not None:
        _fake_suite(options)
    return None


@hookimpl
def otpme_auth_collect_credentials(ctx, options):
    """Find the credential, make a (real or fake) challenge, ask for the response."""
    login = ctx.stash.get(_LOGIN)
    if login is None:
        login = _prepare(ctx, options)
        ctx.stash[_LOGIN] = login
    kind, _, _, challenge, _ = login
    if kind in (REAL, FAKE):
        prompt = build_prompt(options.cmsg, options.rmsg, challenge, time.time())
        ctx.ask_secret(prompt, key=RESPONSE, echo=ctx.core.echo_verification_code)
    return None


def _prepare(ctx, options):
    filename, owner = credential_path(ctx.user, options)
    cred = None
    if filename is None:
        ctx.log.debug("no OCRA credential possible for %s: %s" % (ctx.user, owner), NAME)
    else:
        try:
            owner = _owner_of(filename, owner)
            if owner is not None:
                data = read(filename, owner=owner, allowed_mode=0o600)
                cred = None if data is None else credfile.parse(data)
        except (StateFileError, credfile.OcraCredentialError) as exc:
            ctx.log.error("cannot use the OCRA credential of %s: %s" % (ctx.user, exc), NAME)
            if options.fake_prompt is None:
                return (BROKEN, filename, owner, None, None)
            suite = _fake_suite(options)
            return (BROKEN, filename, owner, credfile.make_challenge(suite), suite)
    if cred is not None:
        suite = cred.parsed_suite
        return (REAL, filename, owner, credfile.make_challenge(suite), suite)
    if options.fake_prompt is None:
        return (NODATA, filename, None, None, None)
    suite = _fake_suite(options)
    return (FAKE, filename, None, credfile.make_challenge(suite), suite)


@hookimpl
def otpme_auth_verify(ctx, options):
    """Check the response under the file's lock; move the counter or disable on the kill PIN."""
    kind, filename, owner, challenge, suite = ctx.stash[_LOGIN]
    if kind == REAL:
        return _verify_real(ctx, filename, owner, challenge)
    if kind == BROKEN:
        if challenge is not None:
            _spend_time(suite, challenge, ctx.credentials.get(RESPONSE))
        return deny("unusable OCRA credential file (see the error above)")
    if kind == FAKE:
        _spend_time(suite, challenge, ctx.credentials.get(RESPONSE))
    if options.nodata == "succeed":
        return allow("no OCRA data, nodata=succeed")
    if options.nodata == "ignore":
        return abstain("no OCRA data, nodata=ignore")
    if kind == FAKE:
        return deny("no OCRA data (fake challenge shown), nodata=fail")
    ctx.log.error("no OCRA data for %s" % ctx.user, NAME)
    return unavailable("no OCRA data, nodata=fail")


def _verify_real(ctx, filename, owner, challenge):
    response = ctx.credentials.get(RESPONSE)
    if response is None:
        return deny("no response")
    try:
        with StateFile.lock(filename, owner=owner, allowed_mode=0o600) as sf:
            if sf.data is None:
                return deny("the credential file %s disappeared" % filename)
            cred = credfile.parse(sf.data)
            if cred.disabled:
                ctx.log.warning("the OCRA credential of %s is disabled" % ctx.user, NAME)
            ok, new = credfile.verify_response(cred, challenge, response.reveal(), time.time())
            if new is not None:
                sf.replace(credfile.serialize(new))
    except (StateFileError, credfile.OcraCredentialError) as exc:
        ctx.log.error("cannot use the OCRA credential of %s: %s" % (ctx.user, exc), NAME)
        return deny("unusable OCRA credential file")
    if ok:
        return allow("valid OCRA response")
    if new is not None and new.disabled:
        ctx.log.warning("kill PIN used for %s: the OCRA credential is now disabled" % ctx.user, NAME)
        return deny("kill PIN used; credential disabled", "Invalid response.")
    return deny("invalid OCRA response", "Invalid response.")


def _spend_time(suite, challenge, response):
    """Check the response against a throw-away credential, as long as a real check takes."""
    if response is None:
        return
    try:
        size = suite.pin_hash_length
        cred = credfile.OcraCredential(
            suite.text, os.urandom(32), counter=0 if suite.counter else None,
            pin_hash=os.urandom(size) if size else None)
        credfile.verify_response(cred, challenge, response.reveal(), time.time())
    except credfile.OcraCredentialError:
        pass


@hookimpl
def otpme_auth_add_cli_commands(subparsers):
    """``otpme-auth ocra init|info|sync``, like pam_ocra's ocra_tool."""
    from .tool import add_commands  # CLI only: never on the login path
    add_commands(subparsers)
