"""Offline logins with a key of the user's ssh-agent (issue 13; docs/offline.md, "ssh tokens").

An ssh token has nothing to type, so nothing to derive a key from, and no cache key may
depend on a signature (ECDSA signatures are random). What an offline ssh login needs is
not a secret but an **authentic** record: the token's public key, as the server sent it
with the last online login. So this is not the sealed cache of typed tokens
(``cache.py``): one small file per user and ssh token, ``ssh.<token>`` in the user's
cache directory, root-only 0600, written atomically under its lock, and authenticated
with an HMAC-SHA256 under a **host key** (32 random bytes, root-only 0600) kept *beside*
the cache directory (``<offline_cache_dir>.ssh-key``), not in it: a record planted, copied
from another user or host, or edited in place by someone who can write the cache
directory but not read that key does not verify, so cannot add a key. (Root, or someone
with the whole disk, can forge one, as they can replace the PAM module.)

The login, with plugins that never import each other (keys on the context):

* pre-auth: for each authentic, unexpired record of the user, a fresh random 32-byte
  nonce, offered as ``offline.challenges`` (``{"type": "ssh", "challenge_id",
  "challenge": hex, "public_key"}``, the shape of the server's ssh method);
* credentials_collected (``sshagent``, only when no server answered): the agent signs one
  whose key it holds; the answer comes back in ``offline.challenge_response``;
* verify_fallback (only when online was UNAVAILABLE): the record is read and
  authenticated again under its lock, not expired, the same public key as offered; the
  signature must verify over *this login's* nonce (used once: a signature from an earlier
  login, or over anything else, fails) with ssh-ed25519, ecdsa-sha2-nistp256/384/521 or
  rsa-sha2-256/512 (never ssh-rsa, SHA-1). ALLOW covers ``online``.

What it unlocks: the record's copy of the server's answer **without anything secret**
(no kept session, no OTP secret: those live only in a password-keyed sealed payload,
which cannot be opened without the password). Share definitions, the greeting, the user
and token names are not secret (docs/offline.md).
"""

import hmac
import json
import os
import time

from otpme_auth import Key, StateFileError
from otpme_auth.statefile import StateFile, open_dir
from otpme_auth.sshsig import ALGORITHMS
from otpme_auth.statefile import read as read_state

from .cache import CacheError, CacheExpired, encode_name

PREFIX = "ssh."
MAGIC = b"OTPMESSH\x01"
MAC_LEN = 32
MAX_RECORD = 64 * 1024
_MAC_LABEL = b"otpme-auth offline ssh record v1\0"
KEY_SUFFIX = ".ssh-key"


class RecordRefused(CacheError):
    """An ssh record that may not log in (forged, altered, expired, a bad signature)."""


# -- the host key and the records ---------------------------------------------

def key_path(cache):
    return cache.root.rstrip("/") + KEY_SUFFIX


def _host_key(cache, create):
    """The host's record key (bytes), made on first use when ``create``; else None if absent."""
    path = key_path(cache)
    parent = os.path.dirname(path)
    fd = open_dir(parent)
    try:
        cache._check_dir(parent, fd, strict=False)   # root's, not group/other-writable
    finally:
        os.close(fd)
    if not create:
        data = read_state(path, owner=cache.owner, allowed_mode=0o600)
    else:
        with StateFile.lock(path, owner=cache.owner, allowed_mode=0o600, create_mode=0o600,
                            timeout=cache.lock_timeout) as state:
            data = state.data
            if data is None:
                data = os.urandom(32)
                state.replace(data)
    if data is not None and len(data) != 32:
        raise RecordRefused("%s is not a host key (%d bytes, not 32)" % (path, len(data)))
    return data


def _lp(*parts):
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def _mac(key, user, token, body):
    return hmac.new(key, _MAC_LABEL + _lp(user.encode(), token.encode(), body), "sha256").digest()


def _record_path(udir, token):
    return os.path.join(udir, PREFIX + encode_name(token, "token name"))


def _parse(data, key, user, token, where):
    """The authenticated record dict, or RecordRefused."""
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + MAC_LEN + 2:
        raise RecordRefused("%s is not an ssh record" % where)
    mac, body = data[len(MAGIC):len(MAGIC) + MAC_LEN], data[len(MAGIC) + MAC_LEN:]
    if key is None or not hmac.compare_digest(mac, _mac(key, user, token, body)):
        raise RecordRefused("%s does not authenticate with this host's key (planted, altered, "
                            "or from another user or host): refused" % where)
    record = json.loads(body)
    if not isinstance(record, dict) or record.get("user") != user or record.get("token") != token:
        raise RecordRefused("%s names another user or token" % where)
    return record


def _pack(key, user, token, record):
    body = json.dumps(record, separators=(",", ":"), sort_keys=True).encode()
    if len(body) > MAX_RECORD:
        raise RecordRefused("the ssh record of %s token %s would be %d bytes" % (user, token,
                                                                                 len(body)))
    return MAGIC + _mac(key, user, token, body) + body


def _expired(record, now):
    if now >= record["expires"]:
        return "absolute"
    if now >= record["last_used"] + record["unused_expiry"]:
        return "unused"
    return None


def store(cache, user, token, entry, answer, now=None):
    """Write ``user``'s record of ssh ``token`` from an online login's offline ``entry``."""
    now = int(time.time() if now is None else now)
    public_key = entry.get("public_key")
    ktype = public_key.split()[0] if isinstance(public_key, str) and public_key.split() else ""
    if ktype not in ALGORITHMS:  # the key types an offline login could check
        raise RecordRefused("token %s: the server sent no usable ssh public key" % token)
    expiry, unused = entry.get("expiry"), entry.get("unused_expiry")
    if not isinstance(expiry, (int, float)) or not isinstance(unused, (int, float)):
        raise RecordRefused("token %s: the server sent no expiry for it" % token)
    kept = {k: v for k, v in answer.items() if k not in ("offline", "session")}
    kept["session"] = None   # a kept session is never in a record anyone can read as root
    record = {"v": 1, "user": user, "token": token,
              "public_key": " ".join(public_key.split()[:2]),
              "created": now, "last_used": now, "expires": int(expiry),
              "unused_expiry": int(unused), "answer": kept}
    key = _host_key(cache, create=True)
    udir = cache._user_dir(user, create=True)
    cache._check_pin(udir, user, token)
    with cache._lock(_record_path(udir, token)) as state:
        state.replace(_pack(key, user, token, record))


def tokens(cache, user):
    """Sorted names of ``user``'s ssh records (not authenticated: only what to try)."""
    return cache.list_named(user, PREFIX)


def remove(cache, user, token):
    """Remove ``user``'s record of ``token``; True if there was one."""
    udir = cache._user_dir(user, create=False)
    if udir is None:
        return False
    with cache._lock(_record_path(udir, token)) as state:
        if state.data is None:
            return False
        cache._unlink(udir, state.name)
        return True


def remove_all(cache):
    """Remove every ssh record of every user: ``{user: [token]}``."""
    removed = {}
    for user in cache.users():
        for token in tokens(cache, user):
            if remove(cache, user, token):
                removed.setdefault(user, []).append(token)
    return removed


def read(cache, user, token, now=None):
    """The authenticated, unexpired record (dict); RecordRefused / CacheExpired otherwise."""
    now = int(time.time() if now is None else now)
    udir = cache._user_dir(user, create=False)
    where = "offline ssh record of %s token %s" % (user, token)
    data = None if udir is None else read_state(_record_path(udir, token), owner=cache.owner,
                                                 allowed_mode=0o600)
    if data is None:
        raise RecordRefused("%s: none" % where)
    record = _parse(data, _host_key(cache, create=False), user, token, where)
    kind = _expired(record, now)
    if kind:
        raise CacheExpired("%s expired (%s expiry); log in online to renew it" % (where, kind),
                           kind)
    return record


def valid(cache, user, now=None):
    """True if ``user`` has an authentic, unexpired ssh record (for check_account)."""
    for token in tokens(cache, user):
        try:
            read(cache, user, token, now)
            return True
        except (CacheError, StateFileError, ValueError, KeyError, TypeError):
            continue
    return False


def use(cache, user, token, public_key, check, now=None):
    """Under the record's lock: authenticate it, check it is unexpired and still holds
    ``public_key``, run ``check(record)`` (the signature), then restart its unused expiry.
    Returns the record."""
    now = int(time.time() if now is None else now)
    key = _host_key(cache, create=False)
    udir = cache._user_dir(user, create=False)
    where = "offline ssh record of %s token %s" % (user, token)
    if udir is None:
        raise RecordRefused("%s: none" % where)
    cache._check_pin(udir, user, token)
    with cache._lock(_record_path(udir, token)) as state:
        if state.data is None:
            raise RecordRefused("%s: none" % where)
        record = _parse(state.data, key, user, token, where)
        kind = _expired(record, now)
        if kind:
            cache._unlink(udir, state.name)
            raise CacheExpired("%s expired (%s expiry) and removed; log in online to renew it"
                               % (where, kind), kind)
        if record["public_key"] != public_key:
            raise RecordRefused("%s: the key changed since it was offered" % where)
        check(record)
        record["last_used"] = max(now, record["last_used"])
        state.replace(_pack(key, user, token, record))
    return record


# -- the signature ---------------------------------------------------------------

def verify_signature(public_key, signature, data):
    """None if ``signature`` (an ssh signature blob) verifies over ``data`` with the
    OpenSSH ``public_key`` line; RecordRefused saying why not."""
    from otpme_auth.sshsig import SignatureRefused, verify_line
    try:
        verify_line(public_key, signature, data)
    except SignatureRefused as exc:
        raise RecordRefused(str(exc)) from None


# -- the hooks' part (called from the plugin's __init__) ---------------------------

NAME = "offline"
UNANSWERED = "unanswered"
# Private to this plugin (never read by another): this login's nonces, and why a record
# of the user was not offered.
_PENDING = Key("offline.ssh_pending", "this login's offline ssh nonces", dict)
_REFUSED = Key("offline.ssh_refused", "why an ssh record of the user was refused", str)


def offer(ctx, cache):
    """pre-auth: a fresh nonce for each authentic, unexpired ssh record of the user."""
    from .keys import OFFLINE_CHALLENGES
    try:
        names = tokens(cache, ctx.user)
        pinned = cache.pinned(ctx.user) if names else None
    except (CacheError, StateFileError, ValueError):
        return   # unreadable: the typed path says why, if it comes to that
    methods, pending = [], {}
    for token in names:
        if pinned is not None and token != pinned:
            ctx.log.info("ssh token %s not offered offline: %s is pinned to %s"
                         % (token, ctx.user, pinned), NAME)
            continue
        try:
            record = read(cache, ctx.user, token)
        except CacheExpired as exc:
            ctx.log.info("not offered for an offline ssh login: %s" % exc, NAME)
            continue
        except (CacheError, StateFileError, ValueError, KeyError, TypeError) as exc:
            # Forged or altered: said now, and a refusal if nothing else logs the user in.
            ctx.log.warning("not offered for an offline ssh login: %s" % exc, NAME)
            ctx.stash[_REFUSED] = str(exc)
            continue
        # os.urandom and base64 rather than secrets (the same bytes; secrets imports random:
        # ~0.6 ms of every login with the offline cache)
        import base64
        cid, nonce = base64.urlsafe_b64encode(os.urandom(18)).decode(), os.urandom(32)
        methods.append({"type": "ssh", "challenge_id": cid, "challenge": nonce.hex(),
                        "public_key": record["public_key"]})
        pending[cid] = (token, nonce, record["public_key"])
    if methods:
        ctx.stash[OFFLINE_CHALLENGES] = methods
        ctx.stash[_PENDING] = pending


def verify(ctx, cache):
    """verify_fallback: None (no ssh record offered), UNANSWERED (offered, the agent gave
    no signature), or the decision on the agent's signature."""
    import base64

    from otpme_auth import allow, deny
    from otpme_auth.keys import LOGIN_ANSWER

    from .keys import OFFLINE_CHALLENGE_RESPONSE
    pending = ctx.stash.pop(_PENDING, None)   # each nonce answers once
    if not pending:
        refused = ctx.stash.get(_REFUSED)
        if refused and ctx.stash.get(OFFLINE_CHALLENGE_RESPONSE) is None:
            ctx.log.warning("offline ssh login of %s refused: %s" % (ctx.user, refused), NAME)
            return UNANSWERED
        return None
    answer = ctx.stash.get(OFFLINE_CHALLENGE_RESPONSE)
    if answer is None:
        ctx.log.warning("offline ssh login of %s: the ssh agent gave no signature for the "
                        "cached key of token %s (sshagent's log line says why)"
                        % (ctx.user, ", ".join(sorted({p[0] for p in pending.values()}))), NAME)
        return UNANSWERED
    try:
        found = pending.get(answer.get("challenge_id"))
        if found is None:
            raise RecordRefused("the answer is to a challenge this login did not make")
        token, nonce, public_key = found
        try:
            signature = base64.b64decode(answer["response"].reveal(), validate=True)
        except (ValueError, TypeError, AttributeError, KeyError):
            raise RecordRefused("the agent's answer is not base64") from None
        record = use(cache, ctx.user, token, public_key,
                     lambda record: verify_signature(public_key, signature, nonce))
    except (CacheError, StateFileError, ValueError, KeyError, TypeError) as exc:
        ctx.log.warning("offline ssh login of %s refused: %s" % (ctx.user, exc), NAME)
        return deny("offline ssh: %s" % exc, user_message="Offline login failed.", final=True)
    answer = record.get("answer")
    ctx.stash[LOGIN_ANSWER] = dict(answer if isinstance(answer, dict) else {}, offline=[])
    ctx.log.info("offline ssh login of %s: the agent's %s key of token %s signed this "
                 "login's nonce" % (ctx.user, public_key.split()[0], token), NAME)
    return allow("offline ssh record of token %s: the agent signed a fresh nonce" % token,
                 covers=("online",))


def store_entries(ctx, cache, entries, answer):
    """post-login (online): write the records of the answer's ssh entries; their names."""
    stored = set()
    for entry in entries:
        if entry.get("type") != "ssh" or not isinstance(entry.get("token"), str):
            continue
        try:
            store(cache, ctx.user, entry["token"], entry, answer)
            stored.add(entry["token"])
            ctx.log.debug("offline ssh record of %s token %s written" % (ctx.user, entry["token"]),
                          NAME)
        except (CacheError, StateFileError, ValueError) as exc:
            ctx.log.warning("offline ssh record of %s token %s not written: %s"
                            % (ctx.user, entry["token"], exc), NAME)
    return stored
