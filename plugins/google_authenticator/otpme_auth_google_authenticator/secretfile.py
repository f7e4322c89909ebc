"""The google-authenticator-libpam secret file, read and updated exactly as the peer does.

Format (``~/.google_authenticator``, written by ``google-authenticator(1)``)::

    JBSWY3DPEHPK3PXP            <- line 1: the base32 secret
    " RATE_LIMIT 3 30 1700000000 1700000012
    " WINDOW_SIZE 17
    " STEP_SIZE 30
    " DISALLOW_REUSE 56666666 56666667
    " TOTP_AUTH                 <- or: " HOTP_COUNTER 1
    " TIME_SKEW -2
    " RESETTING_TIME_SKEW 56666666-2 56666667-2
    " LAST0 192.0.2.7 1700000012   <- grace_period state: "LAST<0-9> <rhost> <unix time>"
    12345678                    <- eight-digit scratch codes, one per line
    87654321

Option lines start with a double quote and a space.  The peer never parses the
file into a structure: it searches and edits the text in place, and its quirks
are part of the format (a changed option line is rewritten in place, a new one is
inserted right after the secret line, later duplicates are deleted, blank lines
after a rewritten line disappear, scratch codes are only recognised up to the
first line that is neither an option nor a code).  :class:`SecretFile` therefore
keeps the file's text and applies the peer's own search and edit rules to it, so

- ``SecretFile.parse(data).serialize() == data`` byte for byte, for any file the
  peer accepts (unknown lines, CRLF, blank lines and all are kept in place);
- after the same sequence of updates, our text equals the peer's text;
- ``SecretFile.parse(x.serialize()) == x``.

Structured, typed views (``totp_auth``, ``window_size``, ``scratch_codes``,
:meth:`SecretFile.lines` ...) are computed from the text with the peer's
parsing rules (including C's ``strtoul``/``strtol`` leniency), and raise
:class:`SecretFileError` where the peer refuses a value (``WINDOW_SIZE 0``,
``STEP_SIZE 61``, a malformed ``RATE_LIMIT``).

The file is bytes; it is held as Latin-1 text so every byte maps to one
character and round-trips.  Neither errors nor ``repr`` ever show the secret, a
scratch code or any line of the file.
"""

from otpme_auth.otp import OtpError
from otpme_auth.otp.base32 import b32decode, b32encode

MAX_FILE_SIZE = 64 * 1024  # the peer refuses larger files (open_secret_file)

_WS = " \t\n\v\f\r"  # C isspace(): what strtoul skips
_EOL = "\r\n"
_ULONG_MAX = (1 << 64) - 1
_LONG_MAX = (1 << 63) - 1
_LONG_MIN = -(1 << 63)


class SecretFileError(OtpError):
    """The secret file (or one of its option values) is invalid.

    The message names the problem and the option, never file content.
    """


# -- C library semantics, so that odd values are read as the peer reads them ------

def _scan_integer(s: str, i: int) -> tuple[bool, int, int]:
    """Where C's ``strtol``/``strtoul`` find the number in ``s[i:]``: (negative, start, end)."""
    n = len(s)
    j = i
    while j < n and s[j] in _WS:
        j += 1
    neg = False
    if j < n and s[j] in "+-":
        neg = s[j] == "-"
        j += 1
    k = j
    while k < n and "0" <= s[k] <= "9":
        k += 1
    return neg, j, k


def _strtoul(s: str, i: int) -> tuple[int, int, bool]:
    """C ``strtoul(s+i, &end, 10)``: returns (value, end, overflowed)."""
    neg, j, k = _scan_integer(s, i)
    if k == j:
        return 0, i, False
    value = int(s[j:k])
    if value > _ULONG_MAX:
        return _ULONG_MAX, k, True
    if neg:
        value = (-value) & _ULONG_MAX
    return value, k, False


def _strtol(s: str, i: int = 0) -> int:
    """C ``strtol(s+i, NULL, 10)`` with clamping, no error reporting (as the peer uses it)."""
    neg, j, k = _scan_integer(s, i)
    if k == j:
        return 0
    value = -int(s[j:k]) if neg else int(s[j:k])
    return max(_LONG_MIN, min(_LONG_MAX, value))


def _int32(value: int) -> int:
    """C cast to a 32-bit ``int``."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= (1 << 31) else value


def _u32(value: int) -> int:
    return value & 0xFFFFFFFF


def _line_end(s: str, i: int) -> int:
    """Index of the first CR or LF at or after ``i`` (C ``strcspn(p, "\\r\\n")``)."""
    n = len(s)
    while i < n and s[i] not in _EOL:
        i += 1
    return i


def _skip_eol(s: str, i: int) -> int:
    n = len(s)
    while i < n and s[i] in _EOL:
        i += 1
    return i


def _find_option(s: str, key: str, start: int = 0) -> int:
    """Start of the first line at or after ``start`` that holds option ``key``, or -1."""
    tag = '" ' + key
    n = len(s)
    line = start
    while line < n:
        if s.startswith(tag, line):
            after = line + len(tag)
            if after == n or s[after] in " \t\r\n":
                return line
        line = _skip_eol(s, _line_end(s, line))
    return -1


def _get_option(s: str, key: str) -> str | None:
    line = _find_option(s, key)
    if line < 0:
        return None
    i = line + 2 + len(key)
    while i < len(s) and s[i] in " \t":
        i += 1
    return s[i:_line_end(s, i)]


def _set_option(s: str, key: str, value: str) -> str:
    """The peer's ``set_cfg_value``: rewrite in place, or insert after line 1."""
    start = _find_option(s, key)
    if start >= 0:
        stop = _skip_eol(s, _line_end(s, start))
    else:
        # The peer inserts after the first CR or LF, but reads the secret up to the
        # first LF: a lone CR inside line 1 (or no line break at all) would have it
        # write into the secret.  Inserting after the first LF is the same place for
        # every file that does not hit that bug, and never corrupts the secret.
        first_end = s.find("\n")
        if first_end < 0:
            s += "\n"
            first_end = len(s) - 1
        start = stop = _skip_eol(s, first_end)
    new_line = '" ' + key + " " + value + "\n"
    s = s[:start] + new_line + s[stop:]
    pos = start + len(new_line)
    while True:
        dup = _find_option(s, key, pos)
        if dup < 0:
            return s
        s = s[:dup] + s[_skip_eol(s, _line_end(s, dup)):]
        pos = dup


def _scratch_scan(s: str):
    """Yield (line_start, code_int, end) for each scratch code the peer recognises."""
    n = len(s)
    ptr = s.find("\n")
    ptr = n if ptr < 0 else ptr
    while True:
        ptr = _skip_eol(s, ptr)
        if ptr < n and s[ptr] == '"':
            nl = s.find("\n", ptr)
            ptr = n if nl < 0 else nl
            continue
        value, end, overflow = _strtoul(s, ptr)
        code = _int32(value)
        if (overflow or end == ptr or (end < n and s[end] not in _EOL)
                or not 10_000_000 <= code < 100_000_000):
            return
        yield ptr, code, end
        ptr = end


def _small_int(value, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _checked_number(value: str, name: str, low: int, high: int) -> int:
    """WINDOW_SIZE / STEP_SIZE parsing: strtoul, whole value, range checked."""
    number, end, overflow = _strtoul(value, 0)
    number = _int32(number)
    if (overflow or not value or end == 0 or (end < len(value) and value[end] not in " \t\r\n")
            or not low <= number <= high):
        raise SecretFileError(f"invalid {name} option in the secret file")
    return number


class SecretFile:
    """A google-authenticator secret file.  Immutable: updates return a new object.

    Build one with :meth:`parse` (file content) or :meth:`build` (enrolment).
    Equality is byte equality of the serialized file.
    """

    __slots__ = ("_text",)

    def __init__(self, text: str):
        self._text = text

    # -- reading and writing ---------------------------------------------------------

    @classmethod
    def parse(cls, data: bytes | str) -> "SecretFile":
        """Check ``data`` the way the peer does before using a file, and wrap it.

        Refused, as by the peer: an empty file, more than 64 KiB, a NUL byte, and a
        first line that is not base32 or decodes to nothing.  Option values are
        checked when used (as the peer does), see the properties.

        :raises SecretFileError: with a message that never contains file content
        """
        if isinstance(data, str):
            try:
                data = data.encode("latin-1")
            except UnicodeEncodeError:
                raise SecretFileError("secret file text must be Latin-1/ASCII") from None
        if not isinstance(data, (bytes, bytearray)):
            raise SecretFileError("secret file content must be bytes")
        if not 1 <= len(data) <= MAX_FILE_SIZE:
            raise SecretFileError("invalid secret file size (must be 1 byte to 64 KiB)")
        if b"\0" in data:
            raise SecretFileError("invalid secret file contents (NUL byte)")
        obj = cls(bytes(data).decode("latin-1"))
        obj.secret  # validates the first line
        return obj

    def serialize(self) -> bytes:
        """The file content, as bytes to write back."""
        return self._text.encode("latin-1")

    @property
    def text(self) -> str:
        """The file content as (Latin-1) text."""
        return self._text

    @classmethod
    def build(cls, secret: bytes, *, totp: bool = True, disallow_reuse: bool = False,
              rate_limit: tuple[int, int] | None = None, window_size: int | None = None,
              step_size: int | None = None, scratch_codes=()) -> "SecretFile":
        """A new file laid out exactly as ``google-authenticator(1)`` writes it.

        Line order: secret, ``RATE_LIMIT``, ``WINDOW_SIZE``, ``STEP_SIZE``,
        ``DISALLOW_REUSE``, ``TOTP_AUTH`` or ``HOTP_COUNTER 1``, scratch codes.

        :param secret: the raw secret (it is base32-encoded here)
        :param totp: time-based (True) or counter-based (False)
        :param disallow_reuse: TOTP only, as the tool enforces
        :param rate_limit: ``(attempts, seconds)``, 1..100 attempts per 1..3600 s
        :param window_size: 1..100 (the peer's limits)
        :param step_size: 1..60 seconds, TOTP only
        :param scratch_codes: eight-digit codes (10000000..99999999)
        """
        if not isinstance(secret, (bytes, bytearray)) or not secret:
            raise SecretFileError("secret must be non-empty bytes")
        lines = [b32encode(bytes(secret))]
        if rate_limit is not None:
            attempts, interval = rate_limit
            if not (_small_int(attempts, 1, 100) and _small_int(interval, 1, 3600)):
                raise SecretFileError("invalid RATE_LIMIT (1..100 attempts per 1..3600 seconds)")
            lines.append(f'" RATE_LIMIT {int(attempts)} {int(interval)}')
        if window_size is not None:
            if not _small_int(window_size, 1, 100):
                raise SecretFileError("invalid WINDOW_SIZE (1..100)")
            lines.append(f'" WINDOW_SIZE {int(window_size)}')
        if step_size is not None:
            if not totp or not _small_int(step_size, 1, 60):
                raise SecretFileError("invalid STEP_SIZE (1..60 seconds, TOTP only)")
            lines.append(f'" STEP_SIZE {int(step_size)}')
        if disallow_reuse:
            if not totp:
                raise SecretFileError("DISALLOW_REUSE is meaningless for HOTP")
            lines.append('" DISALLOW_REUSE')
        lines.append('" TOTP_AUTH' if totp else '" HOTP_COUNTER 1')
        for code in scratch_codes:
            code = str(code)
            if len(code) != 8 or not code.isascii() or not code.isdigit() or code[0] == "0":
                raise SecretFileError("scratch codes must be eight digits, not starting with 0")
            lines.append(code)
        return cls("\n".join(lines) + "\n")

    # -- the secret --------------------------------------------------------------------

    @property
    def secret_base32(self) -> str:
        """The first line as written (the peer reads up to the first LF)."""
        end = self._text.find("\n")
        return self._text if end < 0 else self._text[:end]

    @property
    def secret(self) -> bytes:
        """The decoded shared secret.

        :raises SecretFileError: if the first line is not base32 or is empty
        """
        try:
            secret = b32decode(self.secret_base32)
        except OtpError:
            secret = b""
        if not secret:
            raise SecretFileError("could not find a valid base32 secret on the first line")
        return secret

    # -- options, as the peer's get_cfg_value/set_cfg_value see them -------------------

    def get(self, key: str) -> str | None:
        """Value of option ``key`` (first occurrence, leading blanks stripped), or None."""
        return _get_option(self._text, key)

    def has(self, key: str) -> bool:
        """True if an option line for ``key`` exists."""
        return _find_option(self._text, key) >= 0

    def with_option(self, key: str, value: str) -> "SecretFile":
        """A copy with option ``key`` set to ``value``, edited exactly as the peer edits."""
        if (not key or not isinstance(key, str) or not isinstance(value, str)
                or any(ch in key for ch in ' \t\r\n"\0') or any(ch in value for ch in "\r\n\0")):
            raise SecretFileError("invalid option name or value")
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise SecretFileError("option values must be Latin-1/ASCII") from None
        return SecretFile(_set_option(self._text, key, value))

    # -- typed views -------------------------------------------------------------------

    @property
    def totp_auth(self) -> bool:
        """Whether ``" TOTP_AUTH`` appears anywhere (the peer uses a substring search)."""
        return '" TOTP_AUTH' in self._text

    @property
    def hotp_counter(self) -> int:
        """``HOTP_COUNTER`` as the peer reads it (``strtol``; 0 when absent or garbage).

        The peer uses HOTP only when this is at least 1.
        """
        value = self.get("HOTP_COUNTER")
        return 0 if value is None else _strtol(value)

    @property
    def is_hotp(self) -> bool:
        """True when the peer would verify counter-based codes."""
        return self.hotp_counter > 0

    @property
    def window_size(self) -> int:
        """``WINDOW_SIZE`` (default 3, valid 1..100).

        :raises SecretFileError: on an invalid value, as the peer refuses it
        """
        value = self.get("WINDOW_SIZE")
        return 3 if value is None else _checked_number(value, "WINDOW_SIZE", 1, 100)

    @property
    def step_size(self) -> int:
        """``STEP_SIZE`` in seconds (default 30, valid 1..60).

        :raises SecretFileError: on an invalid value
        """
        value = self.get("STEP_SIZE")
        return 30 if value is None else _checked_number(value, "STEP_SIZE", 1, 60)

    @property
    def time_skew(self) -> int:
        """``TIME_SKEW`` in time steps (``strtol`` cast to int; 0 when absent)."""
        value = self.get("TIME_SKEW")
        return 0 if value is None else _int32(_strtol(value))

    @property
    def rate_limit(self) -> tuple[int, int, tuple[int, ...]] | None:
        """``(attempts, interval, timestamps)`` or None without ``RATE_LIMIT``.

        :raises SecretFileError: on a malformed line (the peer then refuses to log in)
        """
        value = self.get("RATE_LIMIT")
        if value is None:
            return None
        attempts, end, overflow = _strtoul(value, 0)
        attempts = _int32(attempts)
        if attempts < 1 or end == 0 or attempts > 100 or overflow or end >= len(value) \
                or value[end] not in " \t":
            raise SecretFileError("invalid RATE_LIMIT option in the secret file")
        pos = end
        interval, end, overflow = _strtoul(value, pos)
        interval = _int32(interval)
        if interval < 1 or end == pos or interval > 3600 or overflow:
            raise SecretFileError("invalid RATE_LIMIT option in the secret file")
        stamps = []
        while end < len(value) and value[end] not in _EOL:
            if value[end] not in " \t":
                raise SecretFileError("invalid list of timestamps in RATE_LIMIT")
            pos = end
            stamp, end, overflow = _strtoul(value, pos)
            if overflow or end == pos:
                raise SecretFileError("invalid list of timestamps in RATE_LIMIT")
            stamps.append(_u32(stamp))
        return attempts, interval, tuple(stamps)

    @property
    def disallow_reuse(self) -> tuple[int, ...] | None:
        """Used time steps listed after ``DISALLOW_REUSE``, or None if reuse is allowed.

        :raises SecretFileError: on a malformed list
        """
        value = self.get("DISALLOW_REUSE")
        if value is None:
            return None
        out = []
        pos = 0
        while True:
            while pos < len(value) and value[pos] in " \t\r\n":
                pos += 1
            if pos >= len(value):
                return tuple(out)
            blocked, end, overflow = _strtoul(value, pos)
            if overflow or end == pos or (end < len(value) and value[end] not in " \t\r\n"):
                raise SecretFileError("invalid DISALLOW_REUSE option in the secret file")
            out.append(_int32(blocked))
            pos = end

    @property
    def resetting_time_skew(self) -> tuple[tuple[int, int], ...]:
        """The last (up to three) ``(time step, skew)`` pairs of an ongoing skew reset."""
        return tuple(_parse_resetting(self.get("RESETTING_TIME_SKEW") or ""))

    @property
    def last_logins(self) -> tuple[tuple[int, str, int], ...]:
        """``(slot, rhost, unix time)`` for each well-formed ``LAST0``..``LAST9`` line."""
        out = []
        for slot in range(10):
            value = self.get(f"LAST{slot}")
            if value is None:
                continue
            parsed = _scan_last(value)
            if parsed is not None:
                out.append((slot, parsed[0], parsed[1]))
        return tuple(out)

    @property
    def scratch_codes(self) -> tuple[str, ...]:
        """The scratch codes the peer would accept, in file order."""
        return tuple(str(code) for _, code, _ in _scratch_scan(self._text))

    def without_scratch_code(self, code: int | str) -> "SecretFile | None":
        """A copy with the first matching scratch code line removed, or None if absent.

        The line goes together with the line breaks after it, as the peer removes it.
        """
        try:
            code = int(code)
        except (TypeError, ValueError):
            return None
        s = self._text
        for start, value, end in _scratch_scan(s):
            if value == code:
                return SecretFile(s[:start] + s[_skip_eol(s, end):])
        return None

    def lines(self) -> tuple[tuple[str, str, str], ...]:
        """A structured view of every line: ``(kind, name, raw)``.

        ``kind`` is ``"secret"`` (line 1), ``"option"`` (``name`` is the option key),
        ``"scratch"`` (a recognised scratch code) or ``"other"`` (kept verbatim);
        blank lines are omitted.  ``raw`` is the line without its line break.  For
        display and tooling; verification uses the peer's rules directly.
        """
        s = self._text
        scratch_starts = {start for start, _, _ in _scratch_scan(s)}
        out = []
        first_end = s.find("\n")
        first_end = len(s) if first_end < 0 else first_end
        out.append(("secret", "", s[:first_end].rstrip("\r")))
        pos = _skip_eol(s, first_end)
        while pos < len(s):
            end = _line_end(s, pos)
            raw = s[pos:end]
            if raw.startswith('" '):
                name = raw[2:].split(" ", 1)[0].split("\t", 1)[0]
                out.append(("option", name, raw))
            elif pos in scratch_starts:
                out.append(("scratch", "", raw))
            else:
                out.append(("other", "", raw))
            pos = _skip_eol(s, end)
        return tuple(out)

    def problems(self) -> list[str]:
        """Every value the peer would refuse, as messages (empty if the file is sound)."""
        out = []
        for name in ("secret", "window_size", "step_size", "rate_limit", "disallow_reuse"):
            try:
                getattr(self, name)
            except SecretFileError as exc:
                out.append(str(exc))
        return out

    # -- identity ----------------------------------------------------------------------

    def __eq__(self, other):
        return isinstance(other, SecretFile) and other._text == self._text

    def __hash__(self):
        return hash(self._text)

    def __repr__(self):
        mode = "hotp" if self.is_hotp else "totp" if self.totp_auth else "scratch-only"
        return f"<SecretFile {mode}, {len(self._text)} bytes>"


def _parse_resetting(value: str) -> list[tuple[int, int]]:
    """The peer's reading of RESETTING_TIME_SKEW: stop quietly at the first bad pair."""
    entries: list[tuple[int, int]] = []
    ptr = 0
    n = len(value)
    while ptr < n and value[ptr] not in _EOL:
        tm, end, overflow = _strtoul(value, ptr)
        if overflow or end == ptr or end >= n or value[end] not in "+-":
            break
        ptr = end
        skew, end, overflow2 = _strtoul(value, ptr + 1)
        if overflow or overflow2 or (end < n and value[end] not in " \t\r\n"):
            break
        skew = _int32(skew)
        if value[ptr] == "-":
            skew = _int32(-skew)
        entries.append((_u32(tm), skew))
        del entries[:-3]
        ptr = end
    return entries


_HOST_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ:.-")


def _scan_last(value: str) -> tuple[str, int] | None:
    """``sscanf(value, " %255[0-9a-zA-Z:.-] %lu ")`` as the peer reads LAST lines."""
    n = len(value)
    i = 0
    while i < n and value[i] in _WS:
        i += 1
    j = i
    while j < n and j - i < 255 and value[j] in _HOST_CHARS:
        j += 1
    if j == i:
        return None
    host = value[i:j]
    when, end, _ = _strtoul(value, j)
    if end == j:
        return None
    return host, when


__all__ = ["MAX_FILE_SIZE", "SecretFile", "SecretFileError"]
