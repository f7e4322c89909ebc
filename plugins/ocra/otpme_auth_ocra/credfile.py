"""The per-user OCRA credential file, and response verification over it.

File format, version 1
======================

A small text file (ASCII, LF line ends, at most 4 KiB), by default ``~/.ocra``
or ``<dir>/<user>`` with the ``dir=`` option.  It holds a shared key and PIN
hashes, so it must be owned by root (or the user) with mode 0600, and is
rewritten atomically after every successful login (the counter moves) and when
the kill PIN is used.  Example::

    otpme-ocra 1
    suite=OCRA-1:HOTP-SHA1-6:C-QN08-PSHA1
    key=3132333435363738393031323334353637383930
    counter=0
    counter_window=5
    pin_hash=7110eda4d09e062aa5e4a390b0a572ac0d2c0220
    kill_pin_hash=4170ac2a2782a1516fe9e13d7322ae482c1bd594
    disabled=0

Rules:

- Line 1 is exactly ``otpme-ocra 1`` (format name and version).  A reader
  refuses any other version rather than guess.
- Every further line is ``name=value``: no spaces around ``=``, no blank lines,
  no comments, each name at most once, unknown names refused.  Every line ends
  with LF, including the last.
- ``suite`` (required): an RFC 6287 suite string, e.g. ``OCRA-1:HOTP-SHA256-8:QN08-T1M``.
- ``key`` (required): the shared secret, lower-case hex, 16 to 128 bytes.
- ``counter``: required if and only if the suite has ``C``; decimal,
  0..2**64-1.  It is the next counter value the token is expected to use.
- ``counter_window``: only with ``C``; decimal 0..100 (default 0).  A response is
  accepted for any counter from ``counter`` to ``counter + counter_window``; the
  counter is then set to one past the matching value.  Failed logins never move it.
- ``timestamp_offset``: only with ``T``; decimal 0..100 (default 0), in the
  suite's time steps.  Responses for ``T - offset`` .. ``T + offset`` are accepted.
- ``pin_hash``: required if and only if the suite has ``P``; lower-case hex of
  the PIN hashed with the suite's P algorithm (``PSHA1`` -> 20 bytes, ``PSHA256``
  -> 32, ``PSHA512`` -> 64).  The PIN itself is never stored.
- ``kill_pin_hash``: optional, only with ``P``; same form.  A response computed
  with the kill PIN instead of the PIN is refused *and* disables the credential
  (a duress PIN).  It must differ from ``pin_hash``.
- ``disabled``: ``0`` or ``1`` (default 0).  A disabled credential never
  verifies; ``otpme-auth ocra init`` writes a fresh file to re-enable.

:func:`serialize` writes the names in the order above and omits defaults that
do not apply, so ``parse(serialize(c)) == c``.

Errors are :class:`OcraCredentialError` and never quote a line, the key, or a
PIN hash: they name the field and the problem only.
"""

import os

from otpme_auth.otp import OtpError
from otpme_auth.otp._hmac import compare_digest
from otpme_auth.otp.ocra import OcraSuite, ocra, parse_suite, timestamp

MAGIC = "otpme-ocra 1"
MAX_FILE_SIZE = 4096
MAX_WINDOW = 100
_FIELDS = ("suite", "key", "counter", "counter_window", "timestamp_offset", "pin_hash",
           "kill_pin_hash", "disabled")
_HEXLOWER = frozenset("0123456789abcdef")
_DIGITS = frozenset("0123456789")
_U64 = 1 << 64


class OcraCredentialError(OtpError):
    """An OCRA credential file or credential is invalid (the message is safe to log)."""


class OcraCredential:
    """One user's OCRA credential.  Immutable; :meth:`replace` returns a changed copy.

    The ``repr`` shows the suite and counter only, never the key or PIN hashes.
    """

    __slots__ = ("suite", "key", "counter", "counter_window", "timestamp_offset",
                 "pin_hash", "kill_pin_hash", "disabled", "_suite")

    def __init__(self, suite: str, key: bytes, *, counter: int | None = None,
                 counter_window: int = 0, timestamp_offset: int = 0,
                 pin_hash: bytes | None = None, kill_pin_hash: bytes | None = None,
                 disabled: bool = False):
        try:
            parsed = parse_suite(suite)
        except OtpError as exc:
            raise OcraCredentialError(f"suite: {exc}") from None
        if not isinstance(key, (bytes, bytearray)) or not 16 <= len(key) <= 128:
            raise OcraCredentialError("key: must be 16 to 128 bytes")
        if parsed.counter:
            if not _is_int(counter) or not 0 <= counter < _U64:
                raise OcraCredentialError("counter: required by the suite, 0..2**64-1")
        elif counter is not None:
            raise OcraCredentialError("counter: the suite has no C")
        if not _is_int(counter_window) or not 0 <= counter_window <= MAX_WINDOW:
            raise OcraCredentialError(f"counter_window: must be 0..{MAX_WINDOW}")
        if counter_window and not parsed.counter:
            raise OcraCredentialError("counter_window: the suite has no C")
        if not _is_int(timestamp_offset) or not 0 <= timestamp_offset <= MAX_WINDOW:
            raise OcraCredentialError(f"timestamp_offset: must be 0..{MAX_WINDOW}")
        if timestamp_offset and parsed.time_step is None:
            raise OcraCredentialError("timestamp_offset: the suite has no T")
        size = parsed.pin_hash_length
        for name, value in (("pin_hash", pin_hash), ("kill_pin_hash", kill_pin_hash)):
            if value is None:
                continue
            if size is None:
                raise OcraCredentialError(f"{name}: the suite has no P")
            if not isinstance(value, (bytes, bytearray)) or len(value) != size:
                raise OcraCredentialError(f"{name}: must be {size} bytes for the suite's P")
        if size is not None and pin_hash is None:
            raise OcraCredentialError("pin_hash: required by the suite")
        if kill_pin_hash is not None and compare_digest(bytes(kill_pin_hash), bytes(pin_hash)):
            raise OcraCredentialError("kill_pin_hash: must differ from pin_hash")
        if not isinstance(disabled, bool):
            raise OcraCredentialError("disabled: must be a boolean")
        object.__setattr__(self, "_suite", parsed)
        for name, value in (("suite", suite), ("key", bytes(key)), ("counter", counter),
                            ("counter_window", counter_window), ("timestamp_offset", timestamp_offset),
                            ("pin_hash", None if pin_hash is None else bytes(pin_hash)),
                            ("kill_pin_hash", None if kill_pin_hash is None else bytes(kill_pin_hash)),
                            ("disabled", disabled)):
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value):
        raise AttributeError("OcraCredential is immutable; use replace()")

    @property
    def parsed_suite(self) -> OcraSuite:
        """The suite as an :class:`~otpme_auth.otp.ocra.OcraSuite`."""
        return self._suite

    def replace(self, **changes) -> "OcraCredential":
        """A validated copy with some fields changed."""
        fields = {name: getattr(self, name) for name in _FIELDS}
        fields.update(changes)
        suite = fields.pop("suite")
        key = fields.pop("key")
        return OcraCredential(suite, key, **fields)

    def _fields(self):
        return tuple(getattr(self, name) for name in _FIELDS)

    def __eq__(self, other):
        return isinstance(other, OcraCredential) and compare_digest(
            repr(self._fields()).encode(), repr(other._fields()).encode())

    def __hash__(self):
        return hash(self.suite)

    def __repr__(self):
        counter = "" if self.counter is None else f", counter={self.counter}"
        state = ", disabled" if self.disabled else ""
        return f"<OcraCredential {self.suite}{counter}{state}>"


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _decimal(name: str, value: str) -> int:
    if not value or not all(ch in _DIGITS for ch in value) or (len(value) > 1 and value[0] == "0"):
        raise OcraCredentialError(f"{name}: must be a decimal number without leading zeros")
    if len(value) > 20:
        raise OcraCredentialError(f"{name}: out of range")
    return int(value)


def _hex(name: str, value: str) -> bytes:
    if not value or len(value) % 2 or not all(ch in _HEXLOWER for ch in value):
        raise OcraCredentialError(f"{name}: must be lower-case hex with an even number of digits")
    return bytes.fromhex(value)


def parse(data: bytes | str) -> OcraCredential:
    """Parse and validate a credential file (see the module documentation).

    :raises OcraCredentialError: naming the field or line number, never its content
    """
    if isinstance(data, (bytes, bytearray)):
        if len(data) > MAX_FILE_SIZE:
            raise OcraCredentialError("credential file too large")
        try:
            data = bytes(data).decode("ascii")
        except UnicodeDecodeError:
            raise OcraCredentialError("credential file is not ASCII") from None
    if not isinstance(data, str):
        raise OcraCredentialError("credential file content must be bytes or text")
    if len(data) > MAX_FILE_SIZE or not data.isascii():
        raise OcraCredentialError("credential file too large or not ASCII")
    if not data.endswith("\n"):
        raise OcraCredentialError("credential file must end with a newline")
    lines = data[:-1].split("\n")
    if lines[0] != MAGIC:
        raise OcraCredentialError(f"line 1: expected the header {MAGIC!r}")
    values: dict[str, str] = {}
    for number, line in enumerate(lines[1:], start=2):
        name, sep, value = line.partition("=")
        if not sep:
            raise OcraCredentialError(f"line {number}: expected name=value")
        if name not in _FIELDS:
            raise OcraCredentialError(f"line {number}: unknown field")
        if name in values:
            raise OcraCredentialError(f"line {number}: duplicate field {name}")
        if any(ch in value for ch in " \t\r") or not value:
            raise OcraCredentialError(f"{name}: empty value or whitespace")
        values[name] = value
    for required in ("suite", "key"):
        if required not in values:
            raise OcraCredentialError(f"{required}: missing")
    kwargs = {}
    if "counter" in values:
        kwargs["counter"] = _decimal("counter", values["counter"])
    for name in ("counter_window", "timestamp_offset"):
        if name in values:
            kwargs[name] = _decimal(name, values[name])
    for name in ("pin_hash", "kill_pin_hash"):
        if name in values:
            kwargs[name] = _hex(name, values[name])
    if "disabled" in values:
        if values["disabled"] not in ("0", "1"):
            raise OcraCredentialError("disabled: must be 0 or 1")
        kwargs["disabled"] = values["disabled"] == "1"
    return OcraCredential(values["suite"], _hex("key", values["key"]), **kwargs)


def serialize(cred: OcraCredential) -> bytes:
    """The canonical file content for ``cred`` (ASCII bytes)."""
    suite = cred.parsed_suite
    lines = [MAGIC, f"suite={cred.suite}", f"key={cred.key.hex()}"]
    if suite.counter:
        lines.append(f"counter={cred.counter}")
        lines.append(f"counter_window={cred.counter_window}")
    if suite.time_step is not None:
        lines.append(f"timestamp_offset={cred.timestamp_offset}")
    if cred.pin_hash is not None:
        lines.append(f"pin_hash={cred.pin_hash.hex()}")
    if cred.kill_pin_hash is not None:
        lines.append(f"kill_pin_hash={cred.kill_pin_hash.hex()}")
    lines.append(f"disabled={int(cred.disabled)}")
    return ("\n".join(lines) + "\n").encode("ascii")


def _candidates(cred: OcraCredential, now: float):
    suite = cred.parsed_suite
    counters = [None]
    if suite.counter:
        # Stop one short of 2**64-1 so the next counter still fits in 64 bits.
        last = min(cred.counter + cred.counter_window, _U64 - 2)
        counters = list(range(cred.counter, last + 1))
    stamps = [None]
    if suite.time_step is not None:
        base = timestamp(suite, now)
        stamps = [t for t in range(base - cred.timestamp_offset, base + cred.timestamp_offset + 1)
                  if t >= 0]
    return [(c, t) for t in stamps for c in counters]


def _normalize_response(suite: OcraSuite, response: str) -> bytes | None:
    if not isinstance(response, str):
        return None
    response = response.strip(" \t\r\n")
    if suite.digits == 0:
        response = response.lower()
    if not response.isascii():
        return None
    return response.encode("ascii")


def _matches(cred, pin_hash, challenge, response, candidates):
    # Every candidate is computed and compared, so the time taken does not tell
    # which counter or time step matched.
    found = None
    for counter, stamp in candidates:
        expected = ocra(cred.parsed_suite, cred.key, challenge, counter=counter, pin_hash=pin_hash,
                        timestamp_value=stamp).encode("ascii")
        if compare_digest(expected, response) and found is None:
            found = (counter, stamp)
    return found


def verify_response(cred: OcraCredential, challenge: str, response: str,
                    now: float) -> tuple[bool, OcraCredential | None]:
    """Check a response to ``challenge`` at Unix time ``now``.

    - a disabled credential never verifies;
    - with a kill PIN hash, a response made with the kill PIN fails and returns
      the credential with ``disabled=True`` (write it back);
    - with ``C``, counters ``counter .. counter+counter_window`` are tried and a
      match sets ``counter`` to one past it (write it back); failures leave it;
    - with ``T``, time steps within ``timestamp_offset`` of ``now`` are tried.

    :returns: ``(ok, new_credential_or_None)``
    :raises OcraCredentialError: if the challenge does not fit the suite (a bug in
        the caller, not a wrong response)
    """
    if cred.disabled:
        return False, None
    suite = cred.parsed_suite
    answer = _normalize_response(suite, response)
    if answer is None:
        return False, None
    try:
        candidates = _candidates(cred, now)
        if cred.kill_pin_hash is not None:
            if _matches(cred, cred.kill_pin_hash, challenge, answer, candidates) is not None:
                return False, cred.replace(disabled=True)
        found = _matches(cred, cred.pin_hash, challenge, answer, candidates)
    except OcraCredentialError:
        raise
    except OtpError as exc:
        raise OcraCredentialError(f"cannot verify: {exc}") from None
    if found is None:
        return False, None
    if suite.counter:
        return True, cred.replace(counter=found[0] + 1)
    return True, None


def _randbelow(n: int) -> int:
    """Uniform in ``range(n)`` for 1 <= n <= 256, from the kernel's CSPRNG."""
    limit = 256 - 256 % n  # bytes at or above this would bias the result
    while True:
        for byte in os.urandom(16):
            if byte < limit:
                return byte % n


_ALPHABETS = {
    "N": "0123456789",
    "A": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
    "H": "0123456789ABCDEF",
}


def make_challenge(suite, rng=None) -> str:
    """A random challenge in the suite's Q format and length.

    ``QN08`` -> 8 decimal digits, ``QA10`` -> 10 letters and digits, ``QH16`` -> 16
    upper-case hex digits.  Used for real and for fake challenges alike, so the two
    are indistinguishable.

    :param suite: suite string or :class:`~otpme_auth.otp.ocra.OcraSuite`
    :param rng: ``randbelow(n)``-like callable; default: :func:`os.urandom` with
        rejection sampling (the source :func:`secrets.randbelow` uses, without the
        ~5 ms of imports ``secrets`` brings to the login path)
    :raises OcraCredentialError: for an invalid suite
    """
    if not isinstance(suite, OcraSuite):
        try:
            suite = parse_suite(suite)
        except OtpError as exc:
            raise OcraCredentialError(f"suite: {exc}") from None
    if rng is None:
        rng = _randbelow
    alphabet = _ALPHABETS[suite.q_format]
    return "".join(alphabet[rng(len(alphabet))] for _ in range(suite.q_length))


__all__ = ["MAGIC", "OcraCredential", "OcraCredentialError", "make_challenge", "parse",
           "serialize", "verify_response"]
