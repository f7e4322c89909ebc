"""offline: log in with no server, from an encrypted cache written after an online login.

Enabled by ``cache_login_tokens`` (cache after online logins, and use the
cache when no server answers) or ``unlock_via_offline_token`` (answer from the
cache without asking the server: screen unlock).

* post-login, after an **online** success: the pinned token (if any) must be
  the one that logged in, else the login is refused; then every offline entry
  of the server's answer (``LOGIN_ANSWER``) is cached, keyed from what the
  user typed (the password; for a password with a second factor the code is
  split off), with the KDF parameters of ``offline_key_func`` /
  ``check_offline_pass_strength``.  A one-time-code counter never goes back:
  the higher of the cached and the server's ``last_counter`` is kept.
* verify_fallback, only when **online was UNAVAILABLE**: unlock the user's
  cache with what was typed; a second-factor code is checked against the
  cached OTP secret and counter under the file's lock (one-time offline too).
  ALLOW covers ``online``; a wrong password or code, a tampered, expired or
  throttled cache is a final DENY; no cache for the user is UNAVAILABLE.  The
  cached server answer goes to ``ctx.stash[LOGIN_ANSWER]`` (with the session
  when it was kept, and ``offline: []``), so sessionkeep, automount and
  greeting work offline as online.
* pre-auth, with ``unlock_via_offline_token``: when the user has a usable
  cache, ``OFFLINE_FIRST`` keeps the online plugin from asking the server.

Nothing heavy at import: argon2, cryptography and json are imported inside
the functions that need them.  See README.md and docs/offline.md.
"""

from otpme_auth import (
    PASSWORD, LoginRefused, StateFileError, abstain, allow, deny, flag, hookimpl, path,
)
from otpme_auth import unavailable as unavailable_decision  # the hook has an argument named so
from otpme_auth.keys import LOGIN_ANSWER

from .keys import (
    HOST_DISABLED, OFFLINE_FIRST, OFFLINE_USED_CODES, OFFLINE_USED_REPORTED, PROMPT_HINT,
)

from .cache import DEFAULT_ROOT, CacheError
from .keyfunc import CHECK_OFFLINE_PASS_STRENGTH, OFFLINE_KEY_FUNC

NAME = "offline"
#: Verifying needs root (the cache is root-only): a module running as a user
#: (a screen locker) verifies through the root helper instead (docs/lockers.md).
OTPME_AUTH_NEEDS_ROOT = True
#: Token types whose cache is keyed from what is typed at the prompt.
TYPED_TYPES = ("password", "totp", "hotp")
#: Time steps either side accepted for TOTP, counters ahead for HOTP (the server's defaults).
TOTP_WINDOW = 1
HOTP_LOOKAHEAD = 10
PAYLOAD_VERSION = 1


class CodeRefused(CacheError):
    """The one-time code typed with the password is wrong, missing or already used."""


@hookimpl
def otpme_auth_declare_options():
    return [
        flag("cache_login_tokens", "cache the tokens the server allows offline after an online "
             "login, and log in from that cache when no server answers", enables=True),
        OFFLINE_KEY_FUNC,
        CHECK_OFFLINE_PASS_STRENGTH,
        flag("unlock_via_offline_token", "check logins (screen unlock) against the offline cache "
             "only, without asking the server", enables=True),
        path("offline_cache_dir", DEFAULT_ROOT, "directory of the offline cache (root-owned 0700)"),
    ]


@hookimpl
def otpme_auth_add_cli_commands(subparsers):
    from .tool import add_commands  # CLI only: never on the login path
    add_commands(subparsers)


def open_cache(options):
    """The :class:`~.cache.OfflineCache` of the line (tests replace this to set a clock)."""
    from .cache import OfflineCache
    return OfflineCache(options.offline_cache_dir)


# ---------------------------------------------------------------------------
# pre-auth: unlock_via_offline_token
# ---------------------------------------------------------------------------

@hookimpl
def otpme_auth_pre_auth(ctx, options):
    # No background import of the crypto modules here: measured, a thread doing it
    # fought the key derivation for the GIL and made offline logins ~80 ms slower.
    cache = open_cache(options)
    _hint_prompt(ctx, cache)
    _pending_reports(ctx, cache)
    from . import sshlogin
    sshlogin.offer(ctx, cache)   # ssh tokens: a fresh nonce per cached key (docs/offline.md)
    from . import cardlogin
    cardlogin.offer(ctx, cache)  # card tokens (added to ssh's): online asks nothing then
    if not options.unlock_via_offline_token:
        return None
    import os
    import time
    try:
        usable = []
        for token in _candidates(cache, ctx.user):
            header = cache.info(ctx.user, token)   # not authenticated: only to decide whom to ask
            if header is not None and time.time() < min(header.expires, header.unused_until()):
                usable.append(token)
    except (CacheError, StateFileError, ValueError) as exc:
        hint = ""
        if os.geteuid() != 0:
            hint = (" (this program runs PAM as uid %d; the cache is root-only, so a screen "
                    "locker that is not root cannot use unlock_via_offline_token)" % os.geteuid())
        return deny("unlock_via_offline_token: cannot read the offline cache: %s%s" % (exc, hint),
                    final=True)
    if usable:
        ctx.stash[OFFLINE_FIRST] = "unlock_via_offline_token"
        ctx.log.debug("unlock_via_offline_token: %s has an offline cache; the server is not asked"
                      % ctx.user, NAME)
    return None


def _hint_prompt(ctx, cache):
    """Tell online how to word the prompt if no server can: the cache knows about codes."""
    try:
        headers = [cache.info(ctx.user, t) for t in _candidates(cache, ctx.user)]
    except (CacheError, StateFileError, ValueError, OSError):
        return  # unreadable here: verify_fallback will say why, if it comes to that
    with_code = [h for h in headers if h is not None and h.otp_digits]
    if with_code:
        # The most recently used one; its public part says whether a PIN precedes the code.
        ctx.stash[PROMPT_HINT] = "Password+PIN+OTP: " if _public(with_code[0]).get("pin") \
            else "Password+OTP: "


#: The most items one pre-auth reports (the server takes at most 64); the rest go next time.
MAX_REPORTED = 64


def _pending_reports(ctx, cache):
    """Hand online the codes used offline that the server does not know yet: this user's
    first, then every other user's of this host (reported at the host's next contact,
    whoever logs in: docs/offline.md, "Codes used offline are reported to the server")."""
    items = []
    try:
        users = cache.users()
    except (CacheError, StateFileError, ValueError) as exc:
        users = []
        ctx.log.warning("codes used offline cannot be listed: %s" % exc, NAME)
    for user in [ctx.user] + [u for u in users if u != ctx.user]:
        try:
            used = cache.used_codes(user)
        except (CacheError, StateFileError, ValueError) as exc:
            ctx.log.warning("codes used offline by %s cannot be reported: %s" % (user, exc), NAME)
            continue
        items += [{"token": t, "counter": c} for t, c in sorted(used.items())]
    if items:
        ctx.stash[OFFLINE_USED_CODES] = items[:MAX_REPORTED]


def _forget_reported(ctx, options):
    reported = ctx.stash.get(OFFLINE_USED_REPORTED)
    if not reported:
        return
    taken = {i["token"]: i["counter"] for i in reported}
    cache = open_cache(options)
    try:
        users = sorted({ctx.user} | set(cache.users()))
    except (CacheError, StateFileError, ValueError):
        users = [ctx.user]
    for user in users:   # token names are unique: each user's file drops only its own
        try:
            cache.forget_used_codes(user, taken)
        except (CacheError, StateFileError, ValueError) as exc:
            # Sent again at the next contact: the server takes a report twice without harm.
            ctx.log.warning("codes used offline by %s: reported, but not forgotten here: %s"
                            % (user, exc), NAME)


@hookimpl
def otpme_auth_login_failed(ctx, options, decision):
    _forget_reported(ctx, options)  # the server took them even if this login failed
    if ctx.stash.get(HOST_DISABLED):
        drop_all(ctx, options, ctx.stash[HOST_DISABLED])


def drop_all(ctx, options, why):
    """The server says this host may not log anyone in: remove every cached token.

    Pins, failure counts and codes used offline stay (the codes are still to be
    reported if the host is enabled again).  docs/offline.md, "When the server
    disables the host".
    """
    try:
        from . import sshlogin
        cache = open_cache(options)
        removed = cache.remove_all_tokens()
        for user, tokens in sshlogin.remove_all(cache).items():
            removed.setdefault(user, []).extend(tokens)
    except (CacheError, StateFileError, ValueError) as exc:
        ctx.log.error("the server refused this host (%s), but its offline caches could not all "
                      "be removed: %s" % (why, exc), NAME)
        return
    count = sum(len(tokens) for tokens in removed.values())
    ctx.log.warning("the server refused this host (%s): %d offline cache(s) of %d user(s) removed"
                    % (why, count, len(removed)), NAME)


def drop_token(ctx, cache, token, why):
    """Remove ``token``'s cache of ``ctx.user``: the last online login did not renew it."""
    from . import sshlogin
    try:
        if cache.remove(ctx.user, token) | sshlogin.remove(cache, ctx.user, token):
            ctx.log.warning("offline cache of %s token %s removed: %s" % (ctx.user, token, why),
                            NAME)
    except (CacheError, StateFileError, ValueError) as exc:
        # Unreadable here means unusable offline too (the unlock fails the same way).
        ctx.log.error("offline cache of %s token %s should be removed (%s) but cannot be: %s"
                      % (ctx.user, token, why, exc), NAME)


def _public(header):
    """The unauthenticated public part of a cache header (only to word the prompt)."""
    import json
    try:
        data = json.loads(header.public or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _candidates(cache, user):
    """The cached typed tokens of ``user`` to try: the pinned one alone if pinned."""
    import json
    pinned = cache.pinned(user)
    tokens = [pinned] if pinned else cache.list_tokens(user)
    found = []
    for token in tokens:
        header = cache.info(user, token)
        if header is None:
            continue
        try:
            kind = json.loads(header.public or b"{}").get("type")
        except (ValueError, AttributeError):
            kind = None  # not authenticated yet: a bad public part fails the unlock anyway
        if kind in TYPED_TYPES:
            found.append((header.last_used, token))
    # Most recently used first: usually the one the user types.
    return [t for _, t in sorted(found, reverse=True)]


# ---------------------------------------------------------------------------
# check_account: the account phase when no server can answer it
# ---------------------------------------------------------------------------

@hookimpl
def otpme_auth_check_account(ctx, options):
    """Stand in for the server's account check when it is unreachable (issue 9 point 2).

    ALLOW when ``ctx.user`` has an offline cache that is not expired (the
    server's ``offline_expiry`` and ``unused_expiry``, from the cache header):
    the server allowed this user on this host at their last online login, and
    an account it disabled since stops at the next online one.  Login-time
    policies are not in the cache, so they are not checked offline.  The pipeline
    uses this ALLOW only where a check was UNAVAILABLE; a refusal always wins.
    Without a usable cache: ABSTAIN (nothing is known of this user here: with no
    server, a user who could not have logged in offline is not ours to decide).
    """
    import time
    cache = open_cache(options)
    try:
        for token in cache.list_tokens(ctx.user):
            header = cache.info(ctx.user, token)
            if header is not None and time.time() < min(header.expires, header.unused_until()):
                return allow("the offline cache of %s (token %s) is valid" % (ctx.user, token))
        from . import sshlogin
        if sshlogin.valid(cache, ctx.user):
            return allow("the offline ssh record of %s is valid" % ctx.user)
    except (CacheError, StateFileError, ValueError) as exc:
        ctx.log.warning("account: cannot read the offline cache: %s" % exc, NAME)
        return None  # no stand-in: an unavailable server check then fails closed
    return abstain("no usable offline cache of %s" % ctx.user)


# ---------------------------------------------------------------------------
# verify_fallback: the offline login
# ---------------------------------------------------------------------------

@hookimpl
def otpme_auth_verify_fallback(ctx, options, unavailable):
    if "online" not in unavailable:
        return abstain("only stands in for online")
    from . import sshlogin
    cache = open_cache(options)
    ssh = sshlogin.verify(ctx, cache)   # an ssh record and the agent's signature
    if ssh is not None and ssh != sshlogin.UNANSWERED:
        return ssh
    from . import cardlogin
    card = cardlogin.verify(ctx, options, cache)   # card tokens' caches, with the card
    if card is not None:
        return card
    typed = ctx.credentials.get(PASSWORD)
    try:
        tokens = _candidates(cache, ctx.user) if typed is not None else []
    except (CacheError, StateFileError, ValueError) as exc:
        return _refuse(ctx, exc)
    if not tokens:
        if ssh == sshlogin.UNANSWERED:   # an ssh record, and no signature: a refusal
            return deny("offline: no ssh login from the cached ssh record (the lines above "
                        "say why)",
                        user_message="Offline login failed.", final=True)
        return _unavailable("nothing was typed for the offline cache" if typed is None
                            else "no offline cache for %s" % ctx.user)
    params = _unlock_params(options)
    failure = None
    for token in tokens:
        used = []
        try:
            unlocked = cache.unlock(ctx.user, token, typed, change=_code_checker(cache, used),
                                    params=params)
            if used:
                # Reported at the next contact with the server, which then refuses the
                # code online too; unrecorded, it could be used again there: fail closed.
                cache.record_used_codes(ctx.user, used)
        except (CacheError, StateFileError, ValueError) as exc:
            failure = exc
            from .cache import DecryptFailed, NoCache
            if isinstance(exc, (DecryptFailed, NoCache, CodeRefused)):
                continue  # another cached token may be the one typed
            break
        answer = _answer(unlocked.payload)
        if answer is None:
            return _refuse(ctx, CacheError("offline cache of %s token %s: the payload is not "
                                           "this version's" % (ctx.user, token)))
        ctx.stash[LOGIN_ANSWER] = answer
        return allow("offline cache of token %s unlocked" % token, covers=("online",))
    return _refuse(ctx, failure)


def _unavailable(reason):
    return unavailable_decision(reason)


def _refuse(ctx, exc):
    import os
    text = str(exc)
    if isinstance(exc, StateFileError) and os.geteuid() != 0:
        text += " (running as uid %d: the offline cache is root-only)" % os.geteuid()
    ctx.log.warning("offline login of %s refused: %s" % (ctx.user, text), NAME)
    return deny("offline: %s" % text, user_message="Offline login failed.", final=True)


def _unlock_params(options):
    """The parameters the line wants now, when they do not depend on the password's policy."""
    from .keyfunc import choose_params
    check = options.check_offline_pass_strength
    if check is not None:
        # The score needs the policy the server sent; re-encryption waits for the next online login.
        return None
    return choose_params(options.offline_key_func)


def _answer(payload):
    """The cached server answer from a payload, as online puts it in LOGIN_ANSWER."""
    import json
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("v") != PAYLOAD_VERSION:
        return None
    answer = data.get("answer")
    if not isinstance(answer, dict):
        return None
    return dict(answer, offline=[])   # nothing to cache again from an offline login


def _otp_part(entry):
    """The one-time-code parameters of a cached entry, or None."""
    if entry.get("type") == "password":
        second = entry.get("second_factor")
        return second if isinstance(second, dict) else None
    if entry.get("type") in ("totp", "hotp"):
        return entry
    return None


def _code_checker(cache, used):
    """``change(payload, code)`` for unlock(): check and consume the code, under the lock.

    The (OTP token, counter) consumed is appended to ``used``.
    """
    def change(payload, code):
        import json
        data = json.loads(payload)
        otp = _otp_part(data.get("entry") or {})
        if otp is None:
            return None
        if code is None:
            raise CodeRefused("no one-time code was typed after the password")
        counter = match_code(otp, code.reveal(), cache.clock())
        if counter is None:
            raise CodeRefused("the one-time code is wrong or was already used (counter %d)"
                              % int(otp.get("last_counter", -1)))
        otp["last_counter"] = counter
        if isinstance(otp.get("token"), str):
            used.append((otp["token"], counter))
        return json.dumps(data, separators=(",", ":")).encode(), counter
    return change


def match_code(otp, code, now):
    """The counter at which ``code`` is valid and unused, or None (every candidate compared)."""
    from otpme_auth.otp.base32 import b32decode
    from otpme_auth.otp.hotp import match_counter
    try:
        secret = b32decode(otp["secret"])
        digits = int(otp.get("digits", 6))
        algorithm = str(otp.get("algorithm", "SHA1"))
        last = int(otp.get("last_counter", -1))
        if otp.get("type") == "totp":
            step = int(now) // int(otp.get("period", 30))
            first, end = step - TOTP_WINDOW, step + TOTP_WINDOW
        else:
            first, end = last + 1, last + HOTP_LOOKAHEAD
        return match_counter(secret, code, max(first, last + 1), end, digits=digits,
                             algorithm=algorithm)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None


# ---------------------------------------------------------------------------
# post-login: pinning and caching after an online login
# ---------------------------------------------------------------------------

@hookimpl
def otpme_auth_post_login(ctx, options):
    if ctx.offline:
        return None
    _forget_reported(ctx, options)
    answer = ctx.stash.get(LOGIN_ANSWER)
    if not isinstance(answer, dict):
        return None
    from .cache import PinMismatch
    cache = open_cache(options)
    token = answer.get("token")
    try:
        if isinstance(token, str) and token:
            cache.check_pin(ctx.user, token)
    except PinMismatch as exc:
        raise LoginRefused(str(exc), "This host accepts only your pinned token.") from None
    except (CacheError, StateFileError, ValueError) as exc:
        # Without the pin we cannot know whether this token may log in here: fail closed.
        raise LoginRefused("cannot check the pinned offline token: %s" % exc) from None
    entries = [e for e in answer.get("offline") or () if isinstance(e, dict)] \
        if isinstance(answer.get("offline"), list) else []
    stored = set()
    if options.cache_login_tokens:   # ssh records need nothing typed (sshlogin.py)
        from . import sshlogin
        stored |= sshlogin.store_entries(ctx, cache, entries, answer)
    typed = ctx.credentials.get(PASSWORD)
    from .cardlogin import CARD_TYPES, store_entries
    if options.cache_login_tokens and entries:   # card tokens: keyed from the card's answer
        stored |= store_entries(ctx, options, cache, entries, answer)
    typed_entries = [e for e in entries if e.get("type") not in CARD_TYPES + ("ssh",)]
    if options.cache_login_tokens and typed_entries:
        if typed is None:
            ctx.log.info("nothing typed: no offline cache written", NAME)
        for entry in typed_entries if typed is not None else ():
            try:
                if _store(ctx, options, cache, answer, entry, typed):
                    stored.add(entry.get("token"))
            except (CacheError, StateFileError, ValueError) as exc:
                ctx.log.warning("offline cache of %s token %s not written: %s"
                                % (ctx.user, entry.get("token"), exc), NAME)
    # The cache of the token that logged in is this login's, or none: an old cache
    # (an old password, offline since disabled) must not log in offline.
    if isinstance(token, str) and token and token not in stored:
        if not any(e.get("token") == token for e in entries):
            drop_token(ctx, cache, token, "the server sent no offline data for it (offline "
                       "disabled for the token, or not allowed here)")
        elif options.cache_login_tokens:
            drop_token(ctx, cache, token, "not renewed by this online login")
    return None


def _store(ctx, options, cache, answer, entry, typed):
    import json
    import time
    from .cache import split_typed
    from .keyfunc import choose_params
    token, kind = entry.get("token"), entry.get("type")
    if not isinstance(token, str) or kind not in TYPED_TYPES:
        ctx.log.info("token %s (%s): not cached here (only typed tokens: %s)"
                     % (token, kind, ", ".join(TYPED_TYPES)), NAME)
        return
    otp = _otp_part(entry)
    digits = int(otp.get("digits", 6)) if otp else 0
    key_material, _ = split_typed(typed, digits)
    check = options.check_offline_pass_strength
    score = None
    if check is not None:
        from .strength import Policy
        sent = answer.get("password_policy")
        if check.policy == "auto" or (isinstance(sent, dict) and sent.get("name") == check.policy):
            policy = Policy.from_server(sent)
        else:
            policy = Policy(check.policy)
        score = policy.score(key_material.decode("utf-8", "replace"))
        if not policy.acceptable(score):
            ctx.log.warning("offline cache of %s token %s not written: the password's strength "
                            "score %d is below the policy's minimum %d"
                            % (ctx.user, token, score, policy.min_score), NAME)
            return
    params = choose_params(options.offline_key_func, check, score)
    entry = json.loads(json.dumps(entry))   # our own copy
    revision = key_revision(entry)
    counter = -1
    if otp is not None:
        otp = _otp_part(entry)
        # Codes used offline advance only the cached counter; the server may be behind it.
        cached = cache.known_counter(ctx.user, token, revision) if revision is not None \
            else _cached_counter(ctx, cache, token, typed)
        counter = max(int(otp.get("last_counter", -1)), cached)
        otp["last_counter"] = counter
    kept = dict(answer)
    kept.pop("offline", None)
    session = answer.get("session")
    if entry.get("session_keep") and isinstance(session, dict):
        kept["session"] = dict(session, started=time.time())
    else:
        kept["session"] = None
    payload = json.dumps({"v": PAYLOAD_VERSION, "entry": entry, "answer": kept},
                         separators=(",", ":")).encode()
    # What identifies the content: all but the absolute expiry, which the server moves at
    # every login (the header keeps it; cache.REFRESH says how often it is rewritten).
    stable = json.dumps({"v": PAYLOAD_VERSION, "entry": dict(entry, expiry=None),
                         "answer": kept}, separators=(",", ":"), sort_keys=True).encode()
    public = {"type": kind}
    if otp is not None and otp.get("pin_required"):
        public["pin"] = True   # for the prompt when no server can say it: "Password+PIN+OTP: "
    public = json.dumps(public).encode()
    expiry = entry.get("expiry")
    unused = entry.get("unused_expiry")
    if not isinstance(expiry, (int, float)) or not isinstance(unused, (int, float)):
        raise ValueError("the server sent no expiry for it")
    derived = cache.store(ctx.user, token, typed, payload, int(unused), int(expiry), params,
                          otp_digits=digits, public=public, counter=counter, revision=revision,
                          stable=stable)
    ctx.log.debug("offline cache of %s token %s %s (%r)" % (
        ctx.user, token, {True: "written with a new key", False: "resealed"}.get(
            derived, "unchanged (not rewritten)"), params), NAME)
    return True


def key_revision(entry):
    """The server's key revision of an offline entry (bytes), or None if it sent none."""
    revision = entry.get("key_revision")
    if isinstance(revision, str) and 0 < len(revision) <= 128 and revision.isascii():
        return revision.encode("ascii")
    return None



def _cached_counter(ctx, cache, token, typed):
    """The ``last_counter`` of the token's current cache, or -1, for a server that sends no
    ``key_revision`` (costs one key derivation; with a revision, ``known_counter`` is free).
    """
    import json
    try:
        if cache.info(ctx.user, token) is None:
            return -1
        unlocked = cache.unlock(ctx.user, token, typed)
        otp = _otp_part(json.loads(unlocked.payload).get("entry") or {})
        return int(otp.get("last_counter", -1)) if otp else -1
    except (CacheError, StateFileError, ValueError, TypeError, AttributeError) as exc:
        ctx.log.debug("previous offline counter of token %s not read: %s" % (token, exc), NAME)
        return -1
