"""HOTP (RFC 4226) and TOTP (RFC 6238), plus a constant-time code comparison.

All functions are pure: TOTP takes the current time as an argument, so callers
decide where the clock comes from (tests pass a fixed ``now``).

Codes are returned as zero-padded decimal strings (``"007081"``); compare them
with :func:`codes_equal`, never with ``==``.
"""

from otpme_auth.otp import OtpError
# codes_equal lives with the digests: a verifier that has its own HOTP loop (the
# google_authenticator plugin) needs it without this module.
from otpme_auth.otp._hmac import codes_equal, hmac_digest

# Digest sizes double as the set of supported algorithms.
DIGEST_SIZES = {"sha1": 20, "sha256": 32, "sha512": 64}

_U64 = 1 << 64
_POW10 = tuple(10**i for i in range(11))


def normalize_algorithm(name: str) -> str:
    """Return the canonical hash name (``sha1``, ``sha256``, ``sha512``).

    Accepts any case and an optional dash (``SHA-256``).  Raises :class:`OtpError`
    for anything else.
    """
    if not isinstance(name, str):
        raise OtpError("hash algorithm must be a string")
    canon = name.lower().replace("-", "")
    if canon not in DIGEST_SIZES:
        raise OtpError("unsupported hash algorithm (use SHA1, SHA256 or SHA512)")
    return canon


def _check_key(key: bytes) -> None:
    if not isinstance(key, (bytes, bytearray)):
        raise OtpError("key must be bytes")
    if not key:
        raise OtpError("key must not be empty")


def truncate(digest: bytes, digits: int) -> str:
    """Dynamic truncation (RFC 4226 section 5.3) of an HMAC value to ``digits`` digits.

    ``digits`` must be 1..10: the truncated value has 31 bits, so more digits
    would only add leading zeros.
    """
    if not isinstance(digits, int) or isinstance(digits, bool) or not 1 <= digits <= 10:
        raise OtpError("number of digits must be between 1 and 10")
    if len(digest) < 20:
        raise OtpError("HMAC value too short for dynamic truncation")
    offset = digest[-1] & 0x0F
    value = int.from_bytes(digest[offset:offset + 4], "big") & 0x7FFFFFFF
    return str(value % _POW10[digits]).zfill(digits)


def hotp_value(key: bytes, counter: int, algorithm: str = "sha1") -> int:
    """The 31-bit dynamically truncated value (``Snum`` of RFC 4226) for ``counter``."""
    _check_key(key)
    if not isinstance(counter, int) or isinstance(counter, bool) or not 0 <= counter < _U64:
        raise OtpError("counter must be an integer between 0 and 2**64-1")
    digest = hmac_digest(bytes(key), counter.to_bytes(8, "big"), normalize_algorithm(algorithm))
    offset = digest[-1] & 0x0F
    return int.from_bytes(digest[offset:offset + 4], "big") & 0x7FFFFFFF


def hotp(key: bytes, counter: int, *, digits: int = 6, algorithm: str = "sha1") -> str:
    """HOTP code (RFC 4226) for ``counter`` as a zero-padded string of ``digits`` digits.

    :param key: the shared secret (raw bytes, not base32)
    :param counter: moving factor, 0 <= counter < 2**64
    :param digits: 6..10
    :param algorithm: ``sha1`` (RFC 4226), ``sha256`` or ``sha512`` (RFC 6238)
    :raises OtpError: on any invalid argument
    """
    if not isinstance(digits, int) or isinstance(digits, bool) or not 6 <= digits <= 10:
        raise OtpError("number of digits must be between 6 and 10")
    return str(hotp_value(key, counter, algorithm) % _POW10[digits]).zfill(digits)


def totp_counter(now: float, *, step: int = 30, t0: int = 0) -> int:
    """The RFC 6238 time step number ``T = floor((now - t0) / step)``.

    :raises OtpError: if ``step`` is not a positive integer or ``now`` is before ``t0``
    """
    if not isinstance(step, int) or isinstance(step, bool) or step < 1:
        raise OtpError("time step must be a positive number of seconds")
    if not isinstance(now, (int, float)) or isinstance(now, bool) or now != now:
        raise OtpError("time must be a number")
    if now in (float("inf"), float("-inf")):
        raise OtpError("time must be finite")
    if now < t0:
        raise OtpError("time is before T0")
    return int((now - t0) // step)


def totp(key: bytes, now: float, *, step: int = 30, t0: int = 0, digits: int = 6,
         algorithm: str = "sha1") -> str:
    """TOTP code (RFC 6238) valid at Unix time ``now``.

    :param key: the shared secret (raw bytes)
    :param now: Unix time in seconds (int or float); never read from the clock here
    :param step: time step in seconds (default 30)
    :param t0: Unix time to start counting steps from (default 0)
    :param digits: 6..10 (RFC 6238 uses 6 or 8)
    :param algorithm: ``sha1``, ``sha256`` or ``sha512``
    :raises OtpError: on any invalid argument
    """
    return hotp(key, totp_counter(now, step=step, t0=t0), digits=digits, algorithm=algorithm)


def match_counter(key: bytes, code: str, first: int, last: int, *, digits: int = 6,
                  algorithm: str = "sha1") -> int | None:
    """The first counter in [``first``, ``last``] whose HOTP equals ``code``, or None.

    The window search shared by the server and the offline cache.  Every
    candidate is computed and compared in constant time, so the time taken does
    not tell where in the window a code matched.  Counters below 0 are skipped.
    """
    if not isinstance(code, str) or len(code) != digits or not code.isdigit():
        return None
    found = None
    for counter in range(max(first, 0), last + 1):
        if codes_equal(hotp(key, counter, digits=digits, algorithm=algorithm), code) \
                and found is None:
            found = counter
    return found


__all__ = [
    "match_counter",
    "DIGEST_SIZES", "codes_equal", "hotp", "hotp_value", "normalize_algorithm",
    "totp", "totp_counter", "truncate",
]
