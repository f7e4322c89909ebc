"""Offline logins with a card token (``hmac``: a YubiKey's HMAC-SHA1 challenge-response).

The cache of a card token is the same sealed, root-owned, locked cache file as a typed
token's (:mod:`.cache`, format 2); only its key material differs:

* the header's public part (authenticated at unlock, readable before) holds the **next
  challenge** (32 random bytes), the slot and the serial of the card that answered it:
  ``{"type": "hmac", "slot": 2, "serial": 12345678, "challenge": "<64 hex>"}``;
* the cache key is derived from the card's 20-byte answer to that challenge (hex), with the
  line's ``offline_key_func`` (the same KDF as every other token's cache; the strength
  table does not apply: the answer is 160 random bits, not a password).

**Online login** (post-login): the server's offline entry for the token brings a fresh
challenge (``challenge``, ``slot``; docs/protocol.md); the card answers it while it is
still connected for the login, and the cache is written keyed from that answer.
**Offline login** (verify_fallback): the card answers the cached challenge, the cache is
opened with it, then a new random challenge is made, the card answers it, and the cache is
written again keyed from that: the login is allowed only after this rotation, so an answer
never opens the cache twice (a recorded one, replayed by a fake card, finds another
challenge).  Every login re-keys (one key derivation online, two offline).

The card is reached only through the context (plugins never import each other): the
``smartcard`` plugin sets ``smartcard.card`` (serial, slots) and
``smartcard.hmac_responder`` (``respond(slot, challenge) -> Secret``) in pre-auth when a
card is connected.  Threat model: docs/offline.md, "Card tokens".
"""

from otpme_auth import StateFileError, allow, deny

from .cache import CacheError
from .keys import HMAC_RESPONDER, OFFLINE_CHALLENGES, SMARTCARD

NAME = "offline"
#: Token types whose cache is keyed from a card's answer.
CARD_TYPES = ("hmac",)
CHALLENGE_BYTES = 32


def _public(header):
    import json
    try:
        data = json.loads(header.public or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) and data.get("type") in CARD_TYPES else {}


def card_tokens(cache, user):
    """[(token, public part)] of ``user``'s card-token caches (the pinned token alone if
    pinned), most recently used first.  Unauthenticated: only to choose what to ask."""
    pinned = cache.pinned(user)
    found = []
    for token in [pinned] if pinned else cache.list_tokens(user):
        header = cache.info(user, token)
        public = _public(header) if header is not None else {}
        if public:
            found.append((header.last_used, token, public))
    return [(t, p) for _, t, p in sorted(found, key=lambda x: x[0], reverse=True)]


def offer(ctx, cache):
    """pre-auth: offer the cached challenges of ``user``'s card tokens (``offline.challenges``,
    added to what is there), so that with no server online asks for nothing when the
    connected card can answer one (its slot is configured).  The card answers in
    verify_fallback, through ``smartcard.hmac_responder``."""
    try:
        methods = [{"type": "hmac", "token": token, "slot": public.get("slot"),
                    "serial": public.get("serial")}
                   for token, public in card_tokens(cache, ctx.user)]
    except (CacheError, StateFileError, ValueError, OSError):
        return   # verify_fallback says why, if it comes to that
    if methods:
        ctx.stash[OFFLINE_CHALLENGES] = list(ctx.stash.get(OFFLINE_CHALLENGES) or ()) + methods


def _challenge(text):
    """The challenge bytes of a hex text (1-63 bytes: HMAC_LT64), or ValueError."""
    if not isinstance(text, str) or not 2 <= len(text) <= 126:
        raise ValueError("the challenge is not 1-63 bytes of hex")
    return bytes.fromhex(text)


def _slot(value):
    if value not in (1, 2):
        raise ValueError("the YubiKey slot is not 1 or 2")
    return value


def _write(ctx, options, cache, token, slot, serial, payload, unused, expiry, respond):
    """Key ``token``'s cache from the card's answer to a fresh challenge (one derivation)."""
    import json
    import os

    from .keyfunc import choose_params
    challenge = os.urandom(CHALLENGE_BYTES)
    response = respond(slot, challenge)
    public = json.dumps({"type": "hmac", "slot": slot, "serial": serial,
                         "challenge": challenge.hex()}, sort_keys=True).encode()
    cache.store(ctx.user, token, response, payload, int(unused), int(expiry),
                choose_params(options.offline_key_func), public=public)


def _payload(entry, answer):
    """The cached payload of a card token: the entry (without the server's challenge) and
    the server's answer, as the typed tokens' caches hold them."""
    import json
    import time

    from . import PAYLOAD_VERSION
    kept = dict(answer)
    kept.pop("offline", None)
    session = answer.get("session")
    kept["session"] = dict(session, started=time.time()) \
        if entry.get("session_keep") and isinstance(session, dict) else None
    entry = {k: v for k, v in entry.items() if k != "challenge"}
    return json.dumps({"v": PAYLOAD_VERSION, "entry": entry, "answer": kept},
                      separators=(",", ":")).encode()


def store_entries(ctx, options, cache, entries, answer):
    """After an online login: write the caches of the card tokens among ``entries``.

    Returns the names of the tokens written.  Nothing fails the login: a card that cannot
    answer, or no card, leaves no cache for the token (and the plugin removes the old one).
    """
    stored = set()
    _import_pam_yubico(ctx, options, cache, entries, answer, stored)
    for entry in entries:
        if entry.get("type") not in CARD_TYPES:
            continue
        token = entry.get("token")
        respond, card = ctx.stash.get(HMAC_RESPONDER), ctx.stash.get(SMARTCARD) or {}
        try:
            if not isinstance(token, str) or not token:
                raise ValueError("the entry names no token")
            if respond is None:
                raise ValueError("no YubiKey connected to answer its challenge")
            slot = _slot(entry.get("slot", 2))
            expiry, unused = entry.get("expiry"), entry.get("unused_expiry")
            if not isinstance(expiry, (int, float)) or not isinstance(unused, (int, float)):
                raise ValueError("the server sent no expiry for it")
            payload = _payload(entry, answer)
            # The host's own challenge (the server's, in the entry, is as good; ours needs
            # no trust in its randomness): the card answers it now, while it is connected.
            _write(ctx, options, cache, token, slot, card.get("serial"), payload, unused,
                   expiry, respond)
        except (CacheError, StateFileError, ValueError, OSError) as exc:
            ctx.log.warning("offline cache of %s token %s not written: %s"
                            % (ctx.user, token, exc), NAME)
            continue
        stored.add(token)
        ctx.log.debug("offline cache of %s token %s keyed from YubiKey %s (slot %d)"
                      % (ctx.user, token, card.get("serial"), slot), NAME)
    return stored


def _import_pam_yubico(ctx, options, cache, entries, answer, stored):
    """A staged pam_yubico state (pamyubico.py) becomes a card cache if the card matches."""
    from . import pamyubico
    respond = ctx.stash.get(HMAC_RESPONDER)

    def write(token, slot, serial, entry):
        # Only the expiries and session_keep of the entry that logged in: none of its data
        # (a second factor's OTP secret) goes into the card's cache.
        own = {"token": token, "type": "hmac", "slot": slot, "expiry": entry["expiry"],
               "unused_expiry": entry["unused_expiry"],
               "session_keep": bool(entry.get("session_keep"))}
        _write(ctx, options, cache, token, slot, serial, _payload(own, answer),
               own["unused_expiry"], own["expiry"], respond)
    token = pamyubico.convert(ctx, cache, answer, entries, write)
    if token:
        stored.add(token)


def verify(ctx, options, cache):
    """With no server: open a card token's cache with the connected card, then rotate.

    ALLOW (covers online), a final DENY, or None: no card-token cache, or no card and the
    line's ``use_smartcard`` is not ``true`` (the typed tokens' caches are tried next), or
    the card failed and something was typed (tried next, the card's failure logged).
    """
    from .cache import DecryptFailed
    try:
        tokens = card_tokens(cache, ctx.user)
    except (CacheError, StateFileError, ValueError) as exc:
        return _deny(ctx, str(exc))
    if not tokens:
        return None
    respond, card = ctx.stash.get(HMAC_RESPONDER), ctx.stash.get(SMARTCARD)
    if respond is None or card is None:
        ctx.log.info("offline: %s has a YubiKey token cache but no YubiKey is connected"
                     % ctx.user, NAME)
        return None
    failure, message = None, "Offline login failed."
    for token, public in tokens:
        enrolled = public.get("serial")
        if enrolled is not None and card.get("serial") is not None \
                and enrolled != card.get("serial"):
            failure = ("YubiKey %s is not the card of %s token %s (YubiKey %s)"
                       % (card.get("serial"), ctx.user, token, enrolled))
            message = "This YubiKey is not the one enrolled for your offline login."
            continue
        try:
            slot = _slot(public.get("slot"))
            response = respond(slot, _challenge(public.get("challenge")))
            unlocked = cache.unlock(ctx.user, token, response)
        except DecryptFailed as exc:
            failure = ("%s (the connected YubiKey %s does not give the enrolled answer)"
                       % (exc, card.get("serial")))
            message = "This YubiKey is not the one enrolled for your offline login."
            continue
        except TimeoutError as exc:
            failure = "offline cache of %s token %s: %s" % (ctx.user, token, exc)
            message = "The YubiKey did not answer in time."
            continue
        except (CacheError, StateFileError, ValueError, OSError) as exc:
            failure = "offline cache of %s token %s: %s" % (ctx.user, token, exc)
            continue
        from . import _answer
        answer = _answer(unlocked.payload)
        if answer is None:
            return _deny(ctx, "offline cache of %s token %s: the payload is not this "
                         "version's" % (ctx.user, token))
        header = unlocked.header
        try:
            # The answer just used must never open the cache again: re-key it to a new
            # challenge before the login is allowed (a failure here refuses the login).
            _write(ctx, options, cache, token, slot, card.get("serial"), unlocked.payload,
                   header.unused_expiry, header.expires, respond)
        except (CacheError, StateFileError, ValueError, OSError) as exc:
            return _deny(ctx, "offline cache of %s token %s opened, but its challenge could "
                         "not be renewed (%s): refused" % (ctx.user, token, exc))
        from otpme_auth.keys import LOGIN_ANSWER
        ctx.stash[LOGIN_ANSWER] = answer
        ctx.log.info("offline cache of %s token %s opened with YubiKey %s; next challenge set"
                     % (ctx.user, token, card.get("serial")), NAME)
        return allow("offline cache of token %s unlocked with YubiKey %s"
                     % (token, card.get("serial")), covers=("online",))
    from otpme_auth import PASSWORD
    typed = ctx.credentials.get(PASSWORD)
    if typed and not card.get("required"):
        ctx.log.warning("offline login of %s with the YubiKey failed: %s; trying the typed "
                        "tokens' caches" % (ctx.user, failure), NAME)
        return None
    return _deny(ctx, failure, message)


def _deny(ctx, text, message="Offline login failed."):
    ctx.log.warning("offline login of %s refused: %s" % (ctx.user, text), NAME)
    return deny("offline: %s" % text, user_message=message, final=True)
