"""OCRA, the OATH Challenge-Response Algorithm (RFC 6287).

A suite string such as ``OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1`` fixes everything
that goes into the HMAC.  :func:`parse_suite` checks it against the grammar of
RFC 6287 section 6 and returns an :class:`OcraSuite`; :func:`ocra` computes a
response.  The message fed to HMAC is, in order::

    suite string (ASCII) | 0x00 | C | Q | P | S | T

- ``C``: the counter, 8 bytes big-endian, only if the suite starts with ``C-``;
- ``Q``: the challenge, always 128 bytes.  ``QNxx``: decimal digits, converted to
  the hexadecimal form of the number; ``QHxx``: hex digits as given; both are then
  padded on the right with ``0`` nibbles to 256 nibbles (this is what the RFC's
  reference implementation does, including for odd lengths).  ``QAxx``: the ASCII
  bytes, padded on the right with zero bytes.  ``xx`` (04..64) is the challenge
  length a server generates; any challenge of 4..64 characters is accepted for
  computation, because mutual-mode challenges are two challenges concatenated;
- ``P``: the SHA1/SHA256/SHA512 hash of the PIN (``PSHA1`` ...);
- ``S``: session information of exactly ``nnn`` bytes (``S064``); shorter input is
  padded on the left with zero bytes, as in the RFC's reference implementation;
- ``T``: the number of time steps since the epoch, 8 bytes big-endian; the step
  is ``T<n>S`` (1..59 seconds), ``T<n>M`` (1..59 minutes) or ``T<n>H`` (1..48 hours).

The result is truncated as HOTP does to 4..10 digits, or, for a suite with 0
digits, is the full HMAC as lower-case hex.

Errors are :class:`~otpme_auth.otp.OtpError` and never echo a key, PIN or
challenge.
"""

from otpme_auth.otp import OtpError
from otpme_auth.otp._hmac import hash_digest, hmac_digest
from otpme_auth.otp.hotp import DIGEST_SIZES, truncate

_DIGITS = frozenset("0123456789")
_HEX = frozenset("0123456789abcdefABCDEF")
_ALGS = {"SHA1": "sha1", "SHA256": "sha256", "SHA512": "sha512"}
_T_UNITS = {"S": (1, 59), "M": (60, 59), "H": (3600, 48)}
_U64 = 1 << 64

MAX_CHALLENGE = 64
MIN_CHALLENGE = 4


def _number(text: str, width: int | None = None) -> int:
    # int() would also take Unicode digits and underscores; the grammar is ASCII.
    if not text or not all(ch in _DIGITS for ch in text):
        raise OtpError("invalid OCRA suite: expected decimal digits")
    if width is not None and len(text) != width:
        raise OtpError("invalid OCRA suite: wrong number of digits")
    return int(text)


class OcraSuite:
    """A parsed OCRA suite.  Build it with :func:`parse_suite`.

    Attributes: ``text`` (the suite string), ``algorithm`` (``sha1``/``sha256``/
    ``sha512``), ``digits`` (0 or 4..10), ``counter`` (bool), ``q_format``
    (``"A"``, ``"N"`` or ``"H"``), ``q_length`` (4..64), ``pin_algorithm``
    (``None`` or a hash name), ``session_length`` (``None`` or bytes),
    ``time_step`` (``None`` or seconds).
    """

    __slots__ = ("text", "algorithm", "digits", "counter", "q_format", "q_length",
                 "pin_algorithm", "session_length", "time_step")

    def __init__(self, text, algorithm, digits, counter, q_format, q_length,
                 pin_algorithm, session_length, time_step):
        self.text = text
        self.algorithm = algorithm
        self.digits = digits
        self.counter = counter
        self.q_format = q_format
        self.q_length = q_length
        self.pin_algorithm = pin_algorithm
        self.session_length = session_length
        self.time_step = time_step

    @property
    def pin_hash_length(self) -> int | None:
        """Length in bytes of the PIN hash the suite expects, or None without ``P``."""
        return DIGEST_SIZES[self.pin_algorithm] if self.pin_algorithm else None

    def __eq__(self, other):
        return isinstance(other, OcraSuite) and other.text == self.text

    def __hash__(self):
        return hash(self.text)

    def __repr__(self):
        return f"OcraSuite({self.text!r})"

    def __str__(self):
        return self.text


def parse_suite(text: str) -> OcraSuite:
    """Parse and validate an OCRA suite string (RFC 6287 section 6).

    The grammar is applied strictly and case-sensitively, because the suite string
    itself is hashed: ``OCRA-1:HOTP-SHA1-6:QN08`` and a lower-case variant would
    give different responses.

    :raises OtpError: for anything that is not a valid suite (and only that)
    """
    if not isinstance(text, str):
        raise OtpError("OCRA suite must be a string")
    if len(text) > 128 or not text.isascii():
        raise OtpError("invalid OCRA suite")
    parts = text.split(":")
    if len(parts) != 3 or parts[0] != "OCRA-1":
        raise OtpError("invalid OCRA suite: expected OCRA-1:<crypto function>:<data input>")
    crypto = parts[1].split("-")
    if len(crypto) != 3 or crypto[0] != "HOTP" or crypto[1] not in _ALGS:
        raise OtpError("invalid OCRA suite: crypto function must be HOTP-SHA1|SHA256|SHA512-<digits>")
    digits = _number(crypto[2])
    if crypto[2] != str(digits) or not (digits == 0 or 4 <= digits <= 10):
        raise OtpError("invalid OCRA suite: truncation must be 0 or 4..10 digits")

    items = parts[2].split("-")
    pos = 0
    counter = False
    if items[pos] == "C":
        counter = True
        pos += 1
    if pos >= len(items):
        raise OtpError("invalid OCRA suite: the challenge (Q) part is mandatory")
    q = items[pos]
    if len(q) != 4 or q[0] != "Q" or q[1] not in "ANH":
        raise OtpError("invalid OCRA suite: expected QA, QN or QH with a two-digit length")
    q_length = _number(q[2:], 2)
    if not MIN_CHALLENGE <= q_length <= MAX_CHALLENGE:
        raise OtpError("invalid OCRA suite: challenge length must be 04..64")
    pos += 1

    pin_algorithm = session_length = time_step = None
    if pos < len(items) and items[pos].startswith("P"):
        alg = _ALGS.get(items[pos][1:])
        if alg is None:
            raise OtpError("invalid OCRA suite: PIN hash must be PSHA1, PSHA256 or PSHA512")
        pin_algorithm = alg
        pos += 1
    if pos < len(items) and items[pos].startswith("S"):
        session_length = _number(items[pos][1:], 3)
        if session_length < 1:
            raise OtpError("invalid OCRA suite: session information length must be 001..999")
        pos += 1
    if pos < len(items) and items[pos].startswith("T"):
        item = items[pos]
        unit = _T_UNITS.get(item[-1:])
        if unit is None or not 1 <= len(item) - 2 <= 2:
            raise OtpError("invalid OCRA suite: timestamp must be T<n>S, T<n>M or T<n>H")
        count = _number(item[1:-1])
        if not 1 <= count <= unit[1]:
            raise OtpError("invalid OCRA suite: timestamp step out of range")
        time_step = count * unit[0]
        pos += 1
    if pos != len(items):
        raise OtpError("invalid OCRA suite: unexpected data input part")
    return OcraSuite(text, _ALGS[crypto[1]], digits, counter, q[1], q_length,
                     pin_algorithm, session_length, time_step)


def _as_suite(suite) -> OcraSuite:
    return suite if isinstance(suite, OcraSuite) else parse_suite(suite)


def format_question(suite, challenge: str) -> bytes:
    """The 128-byte ``Q`` block for ``challenge`` under the suite's Q format.

    :raises OtpError: if the challenge has the wrong alphabet or length
    """
    suite = _as_suite(suite)
    if not isinstance(challenge, str):
        raise OtpError("challenge must be a string")
    if not MIN_CHALLENGE <= len(challenge) <= MAX_CHALLENGE:
        raise OtpError("challenge must be 4 to 64 characters")
    fmt = suite.q_format
    if fmt == "A":
        if not all(" " <= ch <= "~" for ch in challenge):
            raise OtpError("alphanumeric challenge must be printable ASCII")
        return challenge.encode("ascii").ljust(128, b"\0")
    if fmt == "N":
        if not all(ch in _DIGITS for ch in challenge):
            raise OtpError("numeric challenge must contain only decimal digits")
        nibbles = format(int(challenge), "X")
    else:
        if not all(ch in _HEX for ch in challenge):
            raise OtpError("hexadecimal challenge must contain only hex digits")
        nibbles = challenge
    # Right-pad by nibbles, as RFC 6287's reference code does: "ABC" -> AB C0 00 ...
    return bytes.fromhex(nibbles.ljust(256, "0"))


def hash_pin(suite, pin) -> bytes:
    """Hash a PIN with the suite's ``P`` algorithm (UTF-8 for ``str`` PINs).

    :raises OtpError: if the suite has no ``P`` part
    """
    suite = _as_suite(suite)
    if suite.pin_algorithm is None:
        raise OtpError("the OCRA suite takes no PIN")
    if isinstance(pin, str):
        pin = pin.encode("utf-8", "surrogatepass")
    if not isinstance(pin, (bytes, bytearray)):
        raise OtpError("PIN must be text or bytes")
    return hash_digest(suite.pin_algorithm, bytes(pin))


def timestamp(suite, now: float) -> int:
    """The ``T`` value (number of whole time steps since the epoch) at ``now``.

    :raises OtpError: if the suite has no ``T`` part or ``now`` is not a valid time
    """
    suite = _as_suite(suite)
    if suite.time_step is None:
        raise OtpError("the OCRA suite takes no timestamp")
    if not isinstance(now, (int, float)) or isinstance(now, bool) or not 0 <= now < 2**63:
        raise OtpError("time must be a non-negative number")
    return int(now // suite.time_step)


def _u64(value, what: str) -> bytes:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < _U64:
        raise OtpError(f"{what} must be an integer between 0 and 2**64-1")
    return value.to_bytes(8, "big")


def ocra(suite, key: bytes, challenge: str, *, counter: int | None = None,
         pin: str | bytes | None = None, pin_hash: bytes | None = None,
         session: bytes | None = None, timestamp_value: int | None = None,
         now: float | None = None) -> str:
    """Compute the OCRA response (RFC 6287 section 5).

    :param suite: suite string or :class:`OcraSuite`
    :param key: the shared secret (raw bytes)
    :param challenge: the challenge (Q), 4..64 characters of the suite's format
    :param counter: C, required iff the suite has ``C``
    :param pin: the PIN, hashed here with the suite's P algorithm; or give
    :param pin_hash: the already hashed PIN (exactly the digest size)
    :param session: S, at most the suite's length in bytes (left-padded with zeros)
    :param timestamp_value: T as a number of time steps; or give
    :param now: Unix time, from which T is derived with the suite's step
    :returns: the response: ``digits`` decimal digits, or the whole HMAC in hex for
        a suite with 0 digits
    :raises OtpError: for a missing, superfluous or malformed input
    """
    suite = _as_suite(suite)
    if not isinstance(key, (bytes, bytearray)) or not key:
        raise OtpError("key must be non-empty bytes")
    parts = [suite.text.encode("ascii"), b"\0"]
    if suite.counter:
        if counter is None:
            raise OtpError("the OCRA suite requires a counter (C)")
        parts.append(_u64(counter, "counter"))
    elif counter is not None:
        raise OtpError("the OCRA suite takes no counter")
    parts.append(format_question(suite, challenge))
    if suite.pin_algorithm is not None:
        if (pin is None) == (pin_hash is None):
            raise OtpError("the OCRA suite requires exactly one of PIN or PIN hash (P)")
        if pin is not None:
            pin_hash = hash_pin(suite, pin)
        if not isinstance(pin_hash, (bytes, bytearray)) or len(pin_hash) != suite.pin_hash_length:
            raise OtpError("PIN hash has the wrong length for the suite")
        parts.append(bytes(pin_hash))
    elif pin is not None or pin_hash is not None:
        raise OtpError("the OCRA suite takes no PIN")
    if suite.session_length is not None:
        if not isinstance(session, (bytes, bytearray)) or len(session) > suite.session_length:
            raise OtpError("the OCRA suite requires session information (S) of its length")
        parts.append(bytes(session).rjust(suite.session_length, b"\0"))
    elif session is not None:
        raise OtpError("the OCRA suite takes no session information")
    if suite.time_step is not None:
        if (timestamp_value is None) == (now is None):
            raise OtpError("the OCRA suite requires exactly one of timestamp or now (T)")
        if timestamp_value is None:
            timestamp_value = timestamp(suite, now)
        parts.append(_u64(timestamp_value, "timestamp"))
    elif timestamp_value is not None or now is not None:
        raise OtpError("the OCRA suite takes no timestamp")
    digest = hmac_digest(bytes(key), b"".join(parts), suite.algorithm)
    if suite.digits == 0:
        return digest.hex()
    return truncate(digest, suite.digits)


__all__ = ["OcraSuite", "format_question", "hash_pin", "ocra", "parse_suite", "timestamp"]
