"""The offline cache: per-user, per-token files, encrypted and authenticated.

Layout under ``root`` (default ``/var/cache/otpme-auth/offline``, 0700 root)::

    <root>/<user>/                 0700 root   one directory per user
    <root>/<user>/token.<token>    0600 root   one cache file per token
    <root>/<user>/pin              0600 root   the pinned token's name (if pinned)
    <root>/<user>/failures         0600 root   failed offline attempts (throttling)

Names are kept readable: letters, digits and ``._-@`` stay, every other byte
of the UTF-8 name is written ``%XX`` (so ``alice/pass`` is ``alice%2Fpass``).

Every file goes through :mod:`otpme_auth.statefile` (no symlink followed,
owner and mode checked, locked, replaced atomically).  Directories are
created 0700 and checked (a directory, ours, no group/other bits) on every
use.

A cache file (format version 3, all integers big-endian; docs/offline.md has
the table)::

    key head   magic b"OTPMEOFC", version 3, KDF id, iterations, memory KiB,
               threads, salt (16), otp digits, public length n, public (n)
    key tail   the cache's X25519 public key (32), wrap nonce (12),
               AES-256-GCM(Argon2 key, X25519 private key) (48)
    state      created, last used, expires, unused expiry, counter (-1: none),
               content tag (32: HMAC-SHA256 under HKDF(the key revision) of the
               payload's stable part; zeros without a revision)
    MAC (32)   HMAC-SHA256 under HKDF(the server's key revision) over the key
               block, the state and the seal's ephemeral key and nonce; zeros
               without a revision
    seal       ephemeral X25519 public key (32), nonce (12), then the
               AES-256-GCM ciphertext of (revision length, revision, payload)

An online login whose revision verifies the MAC reseals the payload to the
public key without the password (no key derivation), or, when the content tag
says the payload is the same and the expiries were moved less than
:data:`REFRESH` seconds ago, writes nothing at all (no cryptography import, no
fsync); an offline unlock derives the key, unwraps the private key and opens
the payload.  Versions 1 (payload directly under the Argon2 key) and 2 (no
content tag) are read and rewritten as version 3 at their next unlock.

The associated data of the payload's AEAD is a context label, every byte
before the ciphertext and the user and token names (length-prefixed).  So an edited
header byte, a file moved to another user or token, or an expiry pushed back
fails authentication.  A wrong secret fails in the same way: AES-GCM cannot
tell the two apart, so both are :class:`DecryptFailed` (the user is told the
credentials are wrong; the log line says "wrong secret, or the file was
altered").  What *can* be told apart without the key is reported as such:
a file too short or with a bad magic, an unknown version or id, parameters
out of range (:class:`CacheCorrupt`).  Header fields are never trusted before
authentication: expiry is checked only after a successful decryption.

Throttling (per user, before the key is derived): the attempt is counted
*before* the KDF runs (so parallel guesses are counted too, and a crash
mid-attempt counts as a failure).  After ``free`` (3) failures in a row each
attempt must wait ``base * 2**(failures - free)`` seconds (5 s, 10 s, 20 s, ...,
at most ``cap`` = 900 s) after the previous attempt, else :class:`Throttled`.
A successful unlock, or a store() after an online login, resets the count.
"""

import errno
import os
import struct
import time

from otpme_auth.errors import OtpmeAuthError, StateFileError
from otpme_auth.statefile import StateFile, open_dir
from otpme_auth.statefile import read as read_state

from .keyfunc import (MAX_ITERATIONS, MAX_MEM_KIB, MAX_THREADS, MIN_MEM_KIB, SALT_LEN, KdfParams,
                      derive_key)

DEFAULT_ROOT = "/var/cache/otpme-auth/offline"
MAGIC = b"OTPMEOFC"
VERSION = 3
KDF_IDS = {1: "Argon2_i"}
AEAD_AES256GCM = 1
NONCE_LEN = 12
TAG_LEN = 16
MAX_PAYLOAD = 256 * 1024
MAX_PUBLIC = 4096
MAX_NAME = 200
_FIXED_V1 = struct.Struct(">8sBBIIB16sB12sQQQIBH")
V1_HEADER_LEN = _FIXED_V1.size   # 79
# Version 2: key head (parameters, salt, digits, public length), public part,
# key tail (cache public key, wrap nonce, wrapped private key), state, MAC, seal.
_KEYHEAD = struct.Struct(">8sBBIIB16sBH")          # 38
_KEYTAIL = struct.Struct(">32s12s48s")             # 92
_STATE_V2 = struct.Struct(">QQQIq")                # 36
_STATE = struct.Struct(">QQQIq32s")                # 68: version 3 adds the content tag
MAC_LEN = 32
TAG_BYTES = 32
_SEAL = struct.Struct(">32s12s")                   # 44
HEADER_LEN = _KEYHEAD.size + _KEYTAIL.size + _STATE.size + MAC_LEN + _SEAL.size   # 274
V2_HEADER_LEN = HEADER_LEN - TAG_BYTES                                            # 242
#: An online login that would change nothing but the expiries rewrites the cache only
#: when they were last moved this many seconds ago or more (at most a hundredth of the
#: unused expiry): the cache then expires at most that much earlier, never later.
REFRESH = 3600
MAX_REVISION = 255
_AD_LABEL = b"otpme-auth offline cache v1\0"      # the payload's AD label (both versions)
_WRAP_LABEL = b"otpme-auth offline cache v2 key wrap\0"
_SEAL_LABEL = b"otpme-auth offline cache v2 seal\0"
_MAC_LABEL = b"otpme-auth offline cache v2 state\0"
_CONTENT_LABEL = b"otpme-auth offline cache v3 content\0"
_HKDF_SALT = b"otpme-auth offline cache v2"
_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@")
_TOKEN_PREFIX = "token."


# --------------------------------------------------------------------------
# Errors: small and flat; texts name user, token and file, never a secret.
# --------------------------------------------------------------------------

class CacheError(OtpmeAuthError):
    """Base of the offline cache's errors (PAM_AUTH_ERR)."""

    pam_code = "AUTH_ERR"


class NoCache(CacheError):
    """There is no cache for this user and token."""


class CacheCorrupt(CacheError):
    """The file cannot be a valid cache (detected without the key): truncated, bad magic, ..."""


class UnknownVersion(CacheCorrupt):
    """The file has a format version this code does not read."""


class DecryptFailed(CacheError):
    """Authentication failed: the secret is wrong, or the file was altered (indistinguishable)."""


class CacheExpired(CacheError):
    """The cache is past its absolute or unused expiry (it has been removed)."""

    def __init__(self, message, kind):
        super().__init__(message)
        self.kind = kind   # "absolute" or "unused"


class Throttled(CacheError):
    """Too many failed offline attempts; ``retry_after`` seconds to wait."""

    def __init__(self, message, retry_after):
        super().__init__(message)
        self.retry_after = retry_after


class PinMismatch(CacheError):
    """Another token than the pinned one was used."""


class CacheRefused(CacheError):
    """store() was asked for something it will not write (no secret to key it, too big)."""


# --------------------------------------------------------------------------
# Names and the header
# --------------------------------------------------------------------------

def encode_name(name, what="name"):
    """A user or token name as one safe path component (injective, readable)."""
    if not isinstance(name, str) or not name:
        raise ValueError("the %s must be non-empty text" % what)
    if "\0" in name:
        raise ValueError("the %s must not contain NUL" % what)
    try:
        raw = name.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("the %s is not valid text" % what) from None
    if len(raw) > MAX_NAME:
        raise ValueError("the %s is longer than %d bytes" % (what, MAX_NAME))
    if name in (".", ".."):
        raise ValueError("the %s must not be '.' or '..'" % what)
    return "".join(chr(b) if b in _SAFE else "%%%02X" % b for b in raw)


def decode_name(text):
    """Inverse of :func:`encode_name` (raises ValueError on a foreign file name)."""
    out = bytearray()
    i = 0
    while i < len(text):
        if text[i] == "%":
            part = text[i + 1:i + 3]
            if len(part) != 2 or not all(c in "0123456789ABCDEF" for c in part):
                raise ValueError("bad escape")
            out.append(int(part, 16))
            i += 3
        else:
            out.append(ord(text[i]))
            i += 1
    return out.decode("utf-8")


class Header:
    """The parsed header of a cache file.  Not trusted until :meth:`OfflineCache.unlock`
    authenticated it (``authenticated`` says which).

    Version 2 (written) adds the cache's key pair and the non-secret state
    that an online login rewrites without the password; version 1 is read
    only (an old cache is migrated at its next unlock or replaced at the
    next online login).
    """

    __slots__ = ("version", "params", "salt", "aead", "nonce", "created", "last_used",
                 "expires", "unused_expiry", "otp_digits", "public", "authenticated",
                 "cache_public", "wrap_nonce", "wrapped", "counter", "mac", "ephemeral",
                 "content")

    def __init__(self, params, salt, nonce, created, last_used, expires, unused_expiry,
                 otp_digits=0, public=b"", aead=AEAD_AES256GCM, version=VERSION,
                 cache_public=b"", wrap_nonce=b"", wrapped=b"", counter=-1, mac=b"",
                 ephemeral=b"", content=bytes(TAG_BYTES)):
        self.version = version
        self.params = params
        self.salt = salt
        self.aead = aead
        self.nonce = nonce
        self.created = created
        self.last_used = last_used
        self.expires = expires
        self.unused_expiry = unused_expiry
        self.otp_digits = otp_digits
        self.public = public
        self.authenticated = False
        self.cache_public = cache_public   # X25519 public key of this cache (v2)
        self.wrap_nonce = wrap_nonce       # nonce of the wrapped private key (v2)
        self.wrapped = wrapped             # AES-256-GCM(password key, private key) (v2)
        self.counter = counter             # last one-time-code counter, -1 none (v2)
        self.mac = mac                     # state MAC under the server's key revision (v2)
        self.ephemeral = ephemeral         # ephemeral X25519 public key of the seal (v2)
        self.content = content             # content tag of the payload (v3; zeros: none)

    def _kdf_id(self):
        return {v: k for k, v in KDF_IDS.items()}[self.params.name]

    def pack(self):
        """The bytes before the ciphertext (all of them are the AEAD's associated data)."""
        if self.version == 1:
            return _FIXED_V1.pack(MAGIC, self.version, self._kdf_id(), self.params.iterations,
                                  self.params.memory_kib, self.params.threads, self.salt,
                                  self.aead, self.nonce, self.created, self.last_used,
                                  self.expires, self.unused_expiry, self.otp_digits,
                                  len(self.public)) + self.public
        return (self.pack_key_block() + self.pack_state() + self.mac
                + _SEAL.pack(self.ephemeral, self.nonce))

    def pack_key_head(self):
        """Parameters, salt, digits, public part and the cache's public key (v2)."""
        return _KEYHEAD.pack(MAGIC, self.version, self._kdf_id(), self.params.iterations,
                             self.params.memory_kib, self.params.threads, self.salt,
                             self.otp_digits, len(self.public)) + self.public + self.cache_public

    def pack_key_block(self):
        return self.pack_key_head() + self.wrap_nonce + self.wrapped

    def pack_state(self):
        if self.version == 2:
            return _STATE_V2.pack(self.created, self.last_used, self.expires,
                                  self.unused_expiry, self.counter)
        return _STATE.pack(self.created, self.last_used, self.expires, self.unused_expiry,
                           self.counter, self.content)

    def unused_until(self):
        return self.last_used + self.unused_expiry

    def __repr__(self):
        return ("<Header v%d %r created=%d last_used=%d expires=%d unused_expiry=%d "
                "otp_digits=%d%s>" % (self.version, self.params, self.created, self.last_used,
                                      self.expires, self.unused_expiry, self.otp_digits,
                                      "" if self.authenticated else " (not authenticated)"))


def _check_params(where, kdf_id, iterations, memory, threads, digits, public_len):
    if kdf_id not in KDF_IDS:
        raise CacheCorrupt("%s: unknown key function id %d" % (where, kdf_id))
    if not (1 <= iterations <= MAX_ITERATIONS and 1 <= threads <= MAX_THREADS
            and max(MIN_MEM_KIB, 8 * threads) <= memory <= MAX_MEM_KIB):
        raise CacheCorrupt("%s: key function parameters out of range (t=%d m=%d p=%d)"
                           % (where, iterations, memory, threads))
    if digits > 10:
        raise CacheCorrupt("%s: %d code digits is out of range 0-10" % (where, digits))
    if public_len > MAX_PUBLIC:
        raise CacheCorrupt("%s: public part of %d bytes is too long" % (where, public_len))
    return KdfParams(KDF_IDS[kdf_id], iterations, memory, threads)


def parse(data, where="cache file"):
    """Split ``data`` into (Header, header bytes, ciphertext).

    Raises :class:`CacheCorrupt` (or :class:`UnknownVersion`) only; the
    header is *not* authenticated by this.  Reads format 2 and the old 1.
    """
    if not isinstance(data, (bytes, bytearray)):
        raise CacheCorrupt("%s: not bytes" % where)
    data = bytes(data)
    if len(data) < 9:
        raise CacheCorrupt("%s is truncated (%d bytes; a header has %d)" % (where, len(data), HEADER_LEN))
    if data[:8] != MAGIC:
        raise CacheCorrupt("%s is not an offline cache file (bad magic)" % where)
    if data[8] == 1:
        return _parse_v1(data, where)
    if data[8] not in (2, VERSION):
        raise UnknownVersion("%s has format version %d; this version reads 1 to %d"
                             % (where, data[8], VERSION))
    version = data[8]
    header_len = HEADER_LEN if version == VERSION else V2_HEADER_LEN
    if len(data) < header_len:
        raise CacheCorrupt("%s is truncated (%d bytes; a header has %d)" % (where, len(data), header_len))
    (_, version, kdf_id, iterations, memory, threads, salt, digits,
     public_len) = _KEYHEAD.unpack_from(data)
    params = _check_params(where, kdf_id, iterations, memory, threads, digits, public_len)
    end = header_len + public_len
    if len(data) < end + TAG_LEN + 1:
        raise CacheCorrupt("%s is truncated (%d bytes, at least %d expected)"
                           % (where, len(data), end + TAG_LEN + 1))
    at = _KEYHEAD.size + public_len
    public = data[_KEYHEAD.size:at]
    cache_public, wrap_nonce, wrapped = _KEYTAIL.unpack_from(data, at)
    at += _KEYTAIL.size
    content = bytes(TAG_BYTES)
    if version == VERSION:
        created, last_used, expires, unused_expiry, counter, content = \
            _STATE.unpack_from(data, at)
        at += _STATE.size
    else:
        created, last_used, expires, unused_expiry, counter = _STATE_V2.unpack_from(data, at)
        at += _STATE_V2.size
    mac = data[at:at + MAC_LEN]
    at += MAC_LEN
    ephemeral, nonce = _SEAL.unpack_from(data, at)
    header = Header(params, salt, nonce, created, last_used, expires, unused_expiry, digits,
                    public, AEAD_AES256GCM, version, cache_public, wrap_nonce, wrapped,
                    counter, mac, ephemeral, content)
    return header, data[:end], data[end:]


def _parse_v1(data, where):
    if len(data) < V1_HEADER_LEN:
        raise CacheCorrupt("%s is truncated (%d bytes; a header has %d)"
                           % (where, len(data), V1_HEADER_LEN))
    (_, version, kdf_id, iterations, memory, threads, salt, aead, nonce, created, last_used,
     expires, unused_expiry, digits, public_len) = _FIXED_V1.unpack_from(data)
    if aead != AEAD_AES256GCM:
        raise CacheCorrupt("%s: unknown cipher id %d" % (where, aead))
    params = _check_params(where, kdf_id, iterations, memory, threads, digits, public_len)
    end = V1_HEADER_LEN + public_len
    if len(data) < end + TAG_LEN:
        raise CacheCorrupt("%s is truncated (%d bytes, at least %d expected)"
                           % (where, len(data), end + TAG_LEN))
    header = Header(params, bytes(salt), bytes(nonce), created, last_used, expires,
                    unused_expiry, digits, bytes(data[V1_HEADER_LEN:end]), aead, version)
    return header, bytes(data[:end]), bytes(data[end:])


def _lp(*parts):
    """Length-prefixed concatenation (unambiguous associated data)."""
    return b"".join(struct.pack(">I", len(p)) + p for p in parts)


def _ad(header_bytes, user, token):
    u, t = user.encode("utf-8"), token.encode("utf-8")
    return b"".join((_AD_LABEL, struct.pack(">I", len(header_bytes)), header_bytes,
                     struct.pack(">H", len(u)), u, struct.pack(">H", len(t)), t))


def _open(key, header_bytes, ciphertext, nonce, user, token):
    """Version 1: AES-256-GCM directly under the password key."""
    from cryptography.exceptions import InvalidTag  # lazy
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, _ad(header_bytes, user, token))
    except InvalidTag:
        return None


# -- version 2: the payload sealed to the cache's X25519 key ------------------

def _hkdf(secret, info):
    """HKDF-SHA256 (RFC 5869) for one 32-byte block, from the standard library."""
    import hashlib
    import hmac
    prk = hmac.new(_HKDF_SALT, secret, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


def _names(user, token):
    return _lp(user.encode("utf-8"), token.encode("utf-8"))


def _wrap_ad(header, user, token):
    return _WRAP_LABEL + _lp(header.pack_key_head()) + _names(user, token)


def new_key_pair():
    """A fresh X25519 private key and its 32-byte public key."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey  # lazy
    private = X25519PrivateKey.generate()
    return private, _raw_public(private)


def _raw_public(private):
    # The *_raw() methods, not serialization's Encoding/PublicFormat: importing
    # cryptography.hazmat.primitives.serialization costs a cold login ~9 ms (its ssh
    # module pulls in dataclasses, inspect, ast, dis).
    return private.public_key().public_bytes_raw()


def wrap_private_key(key, private, header, user, token):
    """Put ``private`` into ``header``, encrypted under the password-derived ``key``."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # lazy
    raw = private.private_bytes_raw()
    header.cache_public = _raw_public(private)
    header.wrap_nonce = os.urandom(NONCE_LEN)
    header.wrapped = AESGCM(key).encrypt(header.wrap_nonce, raw, _wrap_ad(header, user, token))


def unwrap_private_key(key, header, user, token):
    """The cache's private key, or None if ``key`` is wrong or the key block was altered."""
    from cryptography.exceptions import InvalidTag  # lazy
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    try:
        raw = AESGCM(key).decrypt(header.wrap_nonce, header.wrapped,
                                  _wrap_ad(header, user, token))
    except InvalidTag:
        return None
    private = X25519PrivateKey.from_private_bytes(raw)
    if _raw_public(private) != header.cache_public:
        return None   # cannot happen with an intact tag; refuse rather than trust
    return private


def revision_mac(revision, header, user, token):
    """The state MAC: key block and state under a key from the server's key revision.

    The revision is an unguessable value the server sends with each login
    (it changes when the password, PIN or OTP secret changes) and that the
    host keeps only inside the sealed payload, so the disk alone cannot
    compute this MAC.  No revision: 32 zero bytes, which never matches.

    Version 3 also covers the seal's ephemeral public key and nonce: only whoever knows
    the private half of that ephemeral key (the writer) can make a ciphertext that opens
    with them, so a verified MAC says the sealed payload is the one written with this
    state (and its content tag), not one sealed to the public key by a file writer.
    """
    import hashlib
    import hmac
    if not revision:
        return bytes(MAC_LEN)
    key = _hkdf(revision, _MAC_LABEL)
    parts = [header.pack_key_block(), header.pack_state()]
    if header.version == VERSION:
        parts.append(_SEAL.pack(header.ephemeral, header.nonce))
    return hmac.new(key, _MAC_LABEL + _lp(*parts) + _names(user, token),
                    hashlib.sha256).digest()


def revision_matches(revision, header, user, token):
    """True if ``header`` (v2 or v3) was written under ``revision`` and not altered since."""
    import hmac
    if not revision or header.version not in (2, VERSION) or header.mac == bytes(MAC_LEN):
        return False
    return hmac.compare_digest(header.mac, revision_mac(revision, header, user, token))


def content_tag(revision, user, token, stable):
    """The v3 content tag: HMAC-SHA256 of ``stable`` (the payload without what changes at
    every login) under a key from the server's key revision; zeros without a revision.

    Like the state MAC, it cannot be computed or checked without the revision (which is
    on disk only inside the sealed payload), so the disk alone learns nothing of the content
    from it; two snapshots of one cache do show whether the content changed between them.
    """
    import hashlib
    import hmac
    if not revision:
        return bytes(TAG_BYTES)
    key = _hkdf(revision, _CONTENT_LABEL)
    return hmac.new(key, _CONTENT_LABEL + _names(user, token) + bytes(stable),
                    hashlib.sha256).digest()


def seal_payload(header, user, token, revision, payload):
    """The whole v3 file: ``payload`` sealed to the header's public key (no password needed).

    Sets the header's ephemeral key, nonce and state MAC.  The associated data
    is every byte before the ciphertext and the names, as in version 1.
    """
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey  # lazy
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    revision = bytes(revision or b"")
    if len(revision) > MAX_REVISION:
        raise CacheRefused("the server's key revision is longer than %d bytes" % MAX_REVISION)
    ephemeral, header.ephemeral = new_key_pair()
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(header.cache_public))
    key = _hkdf(shared, _SEAL_LABEL + header.ephemeral + header.cache_public)
    header.nonce = os.urandom(NONCE_LEN)
    header.mac = revision_mac(revision, header, user, token)
    header_bytes = header.pack()
    plain = bytes((len(revision),)) + revision + bytes(payload)
    return header_bytes + AESGCM(key).encrypt(header.nonce, plain, _ad(header_bytes, user, token))


def open_payload(private, header, header_bytes, ciphertext, user, token):
    """(revision, payload) of a v2 file, or None if anything was altered."""
    from cryptography.exceptions import InvalidTag  # lazy
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(header.ephemeral))
    except ValueError:
        return None   # a low-order point: only an altered file has one
    key = _hkdf(shared, _SEAL_LABEL + header.ephemeral + header.cache_public)
    try:
        plain = AESGCM(key).decrypt(header.nonce, ciphertext, _ad(header_bytes, user, token))
    except InvalidTag:
        return None
    n = plain[0]
    if len(plain) < 1 + n:
        return None
    return plain[1:1 + n], plain[1 + n:]


def _unchanged(header, now, tag, counter, expires, unused):
    """True if an online login would write nothing new into ``header``'s cache.

    ``header`` is resealable (its state MAC verified under the revision just
    sent).  The content tag is compared in constant time; the expiries may lag
    behind the new ones by less than the refresh interval (expiring earlier,
    never later); an absolute expiry the server moved back is always written.
    """
    import hmac
    if header.version != VERSION or header.content == bytes(TAG_BYTES):
        return False
    refresh = min(REFRESH, unused // 100)
    return (hmac.compare_digest(header.content, tag) and header.counter == counter
            and header.unused_expiry == unused
            and 0 <= expires - header.expires < refresh
            and now - header.last_used < refresh)


def _secret_bytes(secret):
    """Text of a Secret, str or bytes -> bytes (never logged, never in an error)."""
    if hasattr(secret, "reveal"):
        secret = secret.reveal()
    if isinstance(secret, str):
        # surrogatepass: odd text from an application still keys deterministically.
        return secret.encode("utf-8", "surrogatepass")
    if isinstance(secret, (bytes, bytearray)):
        return bytes(secret)
    raise TypeError("the secret must be a Secret, text or bytes")


def split_typed(secret, otp_digits):
    """(static part, code) of what was typed: the last ``otp_digits`` characters are the code.

    The key is derived from the static part only (a password, a PIN, a card's
    response); the code changes at every login and is checked against the
    OTP secret inside the payload.  Returns (bytes, str or None).
    """
    if hasattr(secret, "reveal"):
        secret = secret.reveal()
    if not otp_digits:
        return _secret_bytes(secret), None
    if len(secret) <= otp_digits:
        return b"", None
    code = secret[-otp_digits:]
    if isinstance(code, (bytes, bytearray)):
        code = bytes(code).decode("ascii", "replace")   # codes are digits
    return _secret_bytes(secret[:-otp_digits]), code


class Unlocked:
    """What a successful :meth:`OfflineCache.unlock` returns."""

    __slots__ = ("payload", "header", "code")

    def __init__(self, payload, header, code):
        self.payload = payload    # bytes (what store() was given, or the last change)
        self.header = header      # authenticated Header
        self.code = code          # the typed one-time code (Secret) or None

    def __repr__(self):
        return "<Unlocked %d bytes %r>" % (len(self.payload), self.header)


class Throttle:
    """The throttling policy (see the module docstring)."""

    __slots__ = ("free", "base", "cap")

    def __init__(self, free=3, base=5.0, cap=900.0):
        self.free = free
        self.base = base
        self.cap = cap

    def delay(self, failures):
        """Seconds an attempt must wait after the previous one, given ``failures`` so far."""
        if failures < self.free:
            return 0.0
        return min(self.cap, self.base * 2.0 ** min(failures - self.free, 64))


# --------------------------------------------------------------------------
# The cache
# --------------------------------------------------------------------------

class OfflineCache:
    """The cache of one machine.

    :param root: the cache directory (created 0700 if missing).
    :param clock: returns the Unix time; tests inject their own.
    :param throttle: a :class:`Throttle`.
    :param lock_timeout: seconds to wait for another login's lock.
    """

    def __init__(self, root=DEFAULT_ROOT, clock=time.time, throttle=None, lock_timeout=10.0):
        self.root = os.path.abspath(root)
        self.clock = clock
        self.throttle = throttle if throttle is not None else Throttle()
        self.lock_timeout = lock_timeout
        self.owner = os.geteuid()

    def __repr__(self):
        return "<OfflineCache %s>" % self.root

    # -- paths ------------------------------------------------------------

    def _now(self, now):
        return int(self.clock() if now is None else now)

    def _check_dir(self, path, fd, strict):
        st = os.fstat(fd)
        if st.st_uid != self.owner:
            raise StateFileError("%s must be owned by uid %d, not %d" % (path, self.owner, st.st_uid))
        bad = st.st_mode & (0o077 if strict else 0o022)
        if bad:
            raise StateFileError("%s has mode %04o; it must not have %04o"
                                 % (path, st.st_mode & 0o7777, bad))

    def _user_dir(self, user, create):
        """The checked path of ``user``'s directory, or None if absent and not ``create``."""
        name = encode_name(user, "user name")
        if create:
            try:
                os.makedirs(self.root, mode=0o700, exist_ok=True)
            except OSError as exc:
                raise StateFileError("cannot create %s: %s" % (self.root, exc.strerror)) from None
        try:
            root_fd = open_dir(self.root)
        except StateFileError:
            if not create and not os.path.lexists(self.root):
                return None
            raise
        path = os.path.join(self.root, name)
        try:
            self._check_dir(self.root, root_fd, strict=False)
            if create:
                try:
                    os.mkdir(name, 0o700, dir_fd=root_fd)
                except FileExistsError:
                    pass
            flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
            try:
                fd = os.open(name, flags, dir_fd=root_fd)
            except FileNotFoundError:
                if create:
                    raise StateFileError("%s vanished while it was created" % path) from None
                return None
            except OSError as exc:
                raise StateFileError("cannot open the directory %s: %s" % (
                    path, "it is a symlink or not a directory, which is never followed"
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR) else exc.strerror)) from None
            try:
                self._check_dir(path, fd, strict=True)
            finally:
                os.close(fd)
        finally:
            os.close(root_fd)
        return path

    def _token_path(self, udir, token):
        return os.path.join(udir, _TOKEN_PREFIX + encode_name(token, "token name"))

    def _lock(self, path):
        return StateFile.lock(path, owner=self.owner, allowed_mode=0o600, create_mode=0o600,
                              timeout=self.lock_timeout)

    # -- store ------------------------------------------------------------

    def store(self, user, token, secret, payload, expires_unused, expires_absolute, params,
              otp_digits=0, public=b"", now=None, counter=-1, revision=None, stable=None):
        """Write (or refresh) the cache of ``user``'s ``token`` after an online login.

        :param secret: what the user typed (Secret, text or bytes); with
            ``otp_digits`` its last characters are the code and are not used.
        :param payload: bytes (the plugin's JSON).
        :param expires_unused: seconds the cache may stay unused.
        :param expires_absolute: Unix time after which it is void.
        :param params: :class:`~.keyfunc.KdfParams`.
        :param public: bytes readable before unlocking (an HMAC challenge).
        :param counter: the one-time-code counter the payload holds (-1: none);
            kept in the non-secret state, where :meth:`known_counter` reads it.
        :param revision: the server's key revision of the token (bytes), which
            changes whenever the password, PIN or OTP secret changes.  When the
            current cache was written under the same revision (its state MAC
            verifies), with the same parameters, digits and public part, the
            payload is only resealed to the cache's public key: **no key
            derivation**.  Otherwise (no revision, a new password or secret,
            another parameter, an old-format, damaged or altered file) a new
            key pair, salt and password key replace it: one derivation.
        :param stable: the part of ``payload`` that does not change at every
            login (bytes; default: the payload).  When a resealable cache holds
            the same (its content tag verifies), the same counter and unused
            expiry, and its expiries were moved less than :data:`REFRESH`
            seconds ago (a hundredth of the unused expiry if that is less),
            nothing is written: no cryptography import, no fsync.  The cache then
            expires at most that much earlier than a rewrite would make it,
            never later.
        :returns: True if a key was derived, False if the cache was resealed,
            None if nothing changed and nothing was written.
        Also resets the user's failed-attempt count (an online login just proved
        the secret).
        """
        now = self._now(now)
        key_material, _ = split_typed(secret, otp_digits)
        if not key_material:
            raise CacheRefused("offline cache of %s token %s: nothing static to key it from "
                               "(empty password or PIN); not cached" % (user, token))
        if not isinstance(payload, (bytes, bytearray)) or len(payload) > MAX_PAYLOAD:
            raise CacheRefused("offline cache of %s token %s: the payload must be bytes of at "
                               "most %d" % (user, token, MAX_PAYLOAD))
        if not isinstance(public, (bytes, bytearray)) or len(public) > MAX_PUBLIC:
            raise CacheRefused("offline cache of %s token %s: the public part must be bytes of "
                               "at most %d" % (user, token, MAX_PUBLIC))
        if not isinstance(otp_digits, int) or not 0 <= otp_digits <= 10:
            raise CacheRefused("otp_digits must be 0-10")
        if not isinstance(params, KdfParams):
            raise CacheRefused("params must be KdfParams")
        if revision is not None and (not isinstance(revision, (bytes, bytearray))
                                     or len(revision) > MAX_REVISION):
            raise CacheRefused("the key revision must be bytes of at most %d" % MAX_REVISION)
        counter = max(-1, min(int(counter), 2 ** 62))
        expires_absolute = max(0, min(int(expires_absolute), 2 ** 63))
        expires_unused = max(0, min(int(expires_unused), 2 ** 32 - 1))
        if stable is not None and not isinstance(stable, (bytes, bytearray)):
            raise CacheRefused("the stable part of the payload must be bytes")
        tag = content_tag(revision, user, token, payload if stable is None else stable)
        udir = self._user_dir(user, create=True)
        self._check_pin(udir, user, token)
        with self._lock(self._token_path(udir, token)) as state:
            self._check_counter(state.data, user, token, revision, counter)
            header = self._same_key(state.data, user, token, revision, params, otp_digits,
                                    bytes(public))
            derived = header is None
            if not derived and _unchanged(header, now, tag, counter, expires_absolute,
                                          expires_unused):
                derived = None
            elif derived:
                header = Header(params, os.urandom(SALT_LEN), b"", now, now, 0, 0, otp_digits,
                                bytes(public))
                key = derive_key(key_material, header.salt, params)
                private, _ = new_key_pair()
                wrap_private_key(key, private, header, user, token)
            if derived is not None:
                header.last_used = max(now, header.last_used)
                header.expires = expires_absolute
                header.unused_expiry = expires_unused
                header.counter = counter
                header.content = tag
                state.replace(seal_payload(header, user, token, revision, payload))
        self._reset_failures(udir)
        return derived

    def _check_counter(self, data, user, token, revision, counter):
        """Refuse to lower a counter the current state holds under ``revision``.

        The caller read :meth:`known_counter` before this lock was taken; an offline
        login in between may have used a code (counter advanced under the lock).  Writing
        the older counter back would let that code log in offline again, so nothing is
        written (the plugin then drops the cache: the next online login writes it anew).
        """
        if data is None or not revision:
            return
        try:
            header = parse(data)[0]
        except CacheCorrupt:
            return
        if header.counter > counter and revision_matches(revision, header, user, token):
            raise CacheRefused("offline cache of %s token %s: its counter %d is ahead of "
                               "this login's %d (a concurrent offline login used a code); "
                               "not lowered" % (user, token, header.counter, counter))

    def _same_key(self, data, user, token, revision, params, otp_digits, public):
        """The current v2 header if an online login may reseal it without deriving, else None."""
        if data is None or not revision:
            return None
        try:
            header = parse(data)[0]
        except CacheCorrupt:
            return None
        if (header.version != VERSION or header.params != params
                or header.otp_digits != otp_digits or header.public != public):
            return None
        return header if revision_matches(revision, header, user, token) else None

    def known_counter(self, user, token, revision):
        """The one-time-code counter of ``token``'s cache, without the password; -1 if unknown.

        Only a state written under ``revision`` (the server's key revision:
        the MAC verifies) counts; anything else (no cache, an old format, a
        new password or secret, a damaged or altered file) is -1.
        """
        try:
            udir = self._user_dir(user, create=False)
            if udir is None or not revision:
                return -1
            data = read_state(self._token_path(udir, token), owner=self.owner,
                              allowed_mode=0o600)
            if data is None:
                return -1
            header = parse(data)[0]
        except (CacheError, StateFileError, ValueError):
            return -1
        return header.counter if revision_matches(revision, header, user, token) else -1

    # -- unlock -----------------------------------------------------------

    def unlock(self, user, token, secret, now=None, change=None, params=None):
        """Open ``user``'s ``token`` cache with what the user typed.

        Under the file's lock (concurrent logins of one token take turns):
        throttle check, key derivation with the header's parameters, the
        private key unwrapped, the payload opened (both authenticated), expiry
        check, ``change``, and a reseal that refreshes the unused expiry.
        An old (version 1 or 2) cache is rewritten as version 3 with the key
        just derived (no second derivation).

        :param change: optional ``change(payload, code) -> new payload, (new
            payload, counter) or None``, called under the lock (check and
            record a one-time code here: concurrent logins with the same code
            see each other's change).  An exception from it propagates,
            nothing is written, and the attempt stays counted as failed.
        :param params: the :class:`KdfParams` the PAM line wants now; when they
            differ from the file's, it is re-encrypted with them and a new salt.
        :returns: :class:`Unlocked`.
        :raises NoCache, CacheCorrupt, UnknownVersion, Throttled, DecryptFailed,
            CacheExpired, PinMismatch, StateFileError:
        """
        now = self._now(now)
        udir = self._user_dir(user, create=False)
        where = "offline cache of %s token %s" % (user, token)
        if udir is None:
            raise NoCache("%s: there is none" % where)
        self._check_pin(udir, user, token)
        with self._lock(self._token_path(udir, token)) as state:
            if state.data is None:
                raise NoCache("%s: there is none" % where)
            header, header_bytes, ciphertext = parse(state.data, where)
            failures = self._count_attempt(udir, user, now)
            key_material, code = split_typed(secret, header.otp_digits)
            key = derive_key(key_material, header.salt, header.params) if key_material else None
            opened, private, revision = None, None, b""
            if key is not None and header.version == 1:
                opened = _open(key, header_bytes, ciphertext, header.nonce, user, token)
            elif key is not None:
                private = unwrap_private_key(key, header, user, token)
                if private is not None:
                    opened = open_payload(private, header, header_bytes, ciphertext, user,
                                          token)
                    if opened is not None:
                        revision, opened = opened
            if opened is None:
                raise DecryptFailed("%s: wrong secret, or the file was altered (authentication "
                                    "failed); failed attempt %d" % (where, failures))
            payload = opened
            header.authenticated = True
            expired = None
            if now >= header.expires:
                expired = "absolute"
            elif now >= header.unused_until():
                expired = "unused"
            if expired:
                self._unlink(udir, state.name)
                self._reset_failures(udir)
                raise CacheExpired("%s: expired (%s expiry) and removed; log in online to "
                                   "renew it" % (where, expired), expired)
            if code is not None:
                from otpme_auth.context import Secret
                code = Secret(code, "plugin")
            if change is not None:
                new = change(payload, code)
                if isinstance(new, tuple):
                    new, counter = new
                    header.counter = max(header.counter, max(-1, min(int(counter), 2 ** 62)))
                if new is not None:
                    if not isinstance(new, (bytes, bytearray)) or len(new) > MAX_PAYLOAD:
                        raise CacheRefused("%s: change() must return bytes of at most %d"
                                           % (where, MAX_PAYLOAD))
                    payload = bytes(new)
                    header.content = bytes(TAG_BYTES)   # the next online login reseals
            if header.version == 1:
                header.version = VERSION   # migrate: same salt and key, a new key pair
                private = None
            elif header.version != VERSION:
                header.version = VERSION   # v2: the same key pair, wrapped again below
                if params is None or params == header.params:
                    wrap_private_key(key, private, header, user, token)
            if params is not None and params != header.params:
                header.params = params
                header.salt = os.urandom(SALT_LEN)
                key = derive_key(key_material, header.salt, params)
                if private is not None:
                    wrap_private_key(key, private, header, user, token)   # same key pair
            if private is None:
                private, _ = new_key_pair()
                wrap_private_key(key, private, header, user, token)
            header.last_used = max(now, header.last_used)
            state.replace(seal_payload(header, user, token, revision, payload))
            self._reset_failures(udir)
            return Unlocked(payload, header, code)

    def update(self, user, token, secret, payload, now=None):
        """Re-encrypt ``token``'s cache with a new ``payload`` (same key; one KDF run)."""
        return self.unlock(user, token, secret, now=now, change=lambda old, code: payload)

    # -- reading without the key -----------------------------------------

    def info(self, user, token):
        """The (unauthenticated) header of a cache, or None: for show-offline-token."""
        udir = self._user_dir(user, create=False)
        if udir is None:
            return None
        path = self._token_path(udir, token)
        data = read_state(path, owner=self.owner, allowed_mode=0o600)
        if data is None:
            return None
        return parse(data, "offline cache of %s token %s" % (user, token))[0]

    def list_tokens(self, user):
        """Sorted names of the tokens ``user`` has a cache for."""
        return self.list_named(user, _TOKEN_PREFIX)

    def list_named(self, user, prefix):
        """Sorted token names of ``user``'s files named ``prefix`` + encoded token name."""
        udir = self._user_dir(user, create=False)
        if udir is None:
            return []
        fd = open_dir(udir)
        try:
            names = os.listdir(fd)
        finally:
            os.close(fd)
        tokens = []
        for name in names:
            if name.startswith(prefix):
                try:
                    tokens.append(decode_name(name[len(prefix):]))
                except (ValueError, UnicodeDecodeError):
                    continue  # not ours (a leftover temp file is ".token...tmp")
        return sorted(tokens)

    def remove(self, user, token):
        """Remove ``token``'s cache; True if there was one."""
        udir = self._user_dir(user, create=False)
        if udir is None:
            return False
        with self._lock(self._token_path(udir, token)) as state:
            if state.data is None:
                return False
            self._unlink(udir, state.name)
            return True

    # -- dropping caches (issue 8: the server disabled the host, or offline for a token) --

    def users(self):
        """Sorted names of the users that have a cache directory."""
        try:
            fd = open_dir(self.root)
        except StateFileError as exc:
            if getattr(exc, "errno", None) == errno.ENOENT:
                return []
            raise
        try:
            self._check_dir(self.root, fd, strict=False)
            names = os.listdir(fd)
        finally:
            os.close(fd)
        users = []
        for name in names:
            if name.startswith("."):
                continue   # not a user directory (encode_name never starts with ".")
            try:
                users.append(decode_name(name))
            except (ValueError, UnicodeDecodeError):
                continue
        return sorted(users)

    def remove_all_tokens(self):
        """Remove every token cache of every user (pins, failures and codes used offline
        stay); returns ``{user: [token, ...]}`` of what was removed."""
        removed, failed = {}, None
        for user in self.users():
            try:
                for token in self.list_tokens(user):
                    if self.remove(user, token):
                        removed.setdefault(user, []).append(token)
            except (CacheError, StateFileError, ValueError) as exc:
                failed = failed or exc   # the others are still removed; then say so
        if failed is not None:
            raise failed
        return removed

    def _unlink(self, udir, name):
        fd = open_dir(udir)
        try:
            os.unlink(name, dir_fd=fd)
            os.fsync(fd)
        except FileNotFoundError:
            pass
        finally:
            os.close(fd)

    # -- pinning ----------------------------------------------------------

    def pin(self, user, token):
        """Pin ``token``: from now on only it may log ``user`` in (online or offline)."""
        udir = self._user_dir(user, create=False)
        if udir is None or token not in self.list_tokens(user):
            raise NoCache("cannot pin %s token %s: it has no offline cache on this host"
                          % (user, token))
        with self._lock(os.path.join(udir, "pin")) as state:
            state.replace(token.encode("utf-8") + b"\n")

    def unpin(self, user):
        """Remove ``user``'s pin; True if there was one."""
        udir = self._user_dir(user, create=False)
        if udir is None:
            return False
        with self._lock(os.path.join(udir, "pin")) as state:
            if state.data is None:
                return False
            self._unlink(udir, "pin")
            return True

    def pinned(self, user):
        """The token ``user`` is pinned to, or None."""
        udir = self._user_dir(user, create=False)
        if udir is None:
            return None
        return self._read_pin(udir, user)

    def _read_pin(self, udir, user):
        path = os.path.join(udir, "pin")
        data = read_state(path, owner=self.owner, allowed_mode=0o600)
        if data is None:
            return None
        try:
            token = data.decode("utf-8").rstrip("\n")
            encode_name(token)
        except (UnicodeDecodeError, ValueError):
            raise CacheCorrupt("%s is not a token name; refusing every token of %s until "
                               "it is fixed" % (path, user)) from None
        return token

    def check_pin(self, user, token):
        """Raise :class:`PinMismatch` if ``user`` is pinned to another token than ``token``."""
        udir = self._user_dir(user, create=False)
        if udir is not None:
            self._check_pin(udir, user, token)

    def _check_pin(self, udir, user, token):
        pinned = self._read_pin(udir, user)
        if pinned is not None and pinned != token:
            raise PinMismatch("%s is pinned to token %s on this host; token %s is refused"
                              % (user, pinned, token))

    # -- one-time codes used offline, until the server knows -------------

    _USED = "used-codes"

    def _parse_used(self, path, data):
        import json
        if data is None:
            return {}
        try:
            used = json.loads(data.decode("utf-8"))
            if isinstance(used, dict) and all(isinstance(k, str) and type(v) is int and v >= 0
                                              for k, v in used.items()):
                return used
        except (ValueError, UnicodeDecodeError):
            pass
        raise CacheCorrupt("%s is not a list of used one-time codes" % path)

    def record_used_codes(self, user, used):
        """Remember that ``used`` ((OTP token, counter) pairs) were accepted offline."""
        import json
        udir = self._user_dir(user, create=True)
        path = os.path.join(udir, self._USED)
        with self._lock(path) as state:
            known = self._parse_used(path, state.data)
            for token, counter in used:
                known[token] = max(int(counter), known.get(token, -1))
            state.replace(json.dumps(known, sort_keys=True).encode("utf-8"))

    def used_codes(self, user):
        """{OTP token: highest counter used offline} not yet reported to the server."""
        udir = self._user_dir(user, create=False)
        if udir is None:
            return {}
        path = os.path.join(udir, self._USED)
        return self._parse_used(path, read_state(path, owner=self.owner, allowed_mode=0o600))

    def forget_used_codes(self, user, reported):
        """Drop what the server took (``reported``: {token: counter}); newer uses stay."""
        import json
        udir = self._user_dir(user, create=False)
        if udir is None:
            return
        path = os.path.join(udir, self._USED)
        with self._lock(path) as state:
            if state.data is None:
                return
            known = self._parse_used(path, state.data)
            left = {t: c for t, c in known.items() if c > reported.get(t, -1)}
            if left == known:
                return
            if left:
                state.replace(json.dumps(left, sort_keys=True).encode("utf-8"))
            else:
                self._unlink(udir, state.name)

    # -- throttling -------------------------------------------------------

    def failures(self, user):
        """(failed attempts in a row, time of the last attempt) for ``user``."""
        udir = self._user_dir(user, create=False)
        if udir is None:
            return 0, 0
        return self._parse_failures(read_state(os.path.join(udir, "failures"),
                                               owner=self.owner, allowed_mode=0o600))

    def _parse_failures(self, data):
        if data is None:
            return 0, 0
        try:
            count, last = data.decode("ascii").split()
            count, last = int(count), int(last)
            if count < 0 or last < 0:
                raise ValueError
            return count, last
        except (ValueError, UnicodeDecodeError):
            # Root-only file, so this is a bug or disk damage: throttle, don't reset.
            return self.throttle.free, 0

    def _count_attempt(self, udir, user, now):
        """Refuse if throttled, else count this attempt; returns the new count."""
        with self._lock(os.path.join(udir, "failures")) as state:
            count, last = self._parse_failures(state.data)
            delay = self.throttle.delay(count)
            # min(): a clock set back must not lock the user out for longer than the delay.
            wait = min(delay, last + delay - now) if delay else 0
            if wait > 0:
                raise Throttled("offline login of %s: %d failed attempts; next attempt allowed "
                                "in %d s" % (user, count, -(-wait // 1)), wait)
            count += 1
            state.replace(b"%d %d\n" % (count, now))
            return count

    def _reset_failures(self, udir):
        with self._lock(os.path.join(udir, "failures")) as state:
            if state.data is not None and state.data != b"0 0\n":
                state.replace(b"0 0\n")

    def reset_failures(self, user):
        """Forget ``user``'s failed attempts (an online login succeeded)."""
        udir = self._user_dir(user, create=False)
        if udir is not None:
            self._reset_failures(udir)
