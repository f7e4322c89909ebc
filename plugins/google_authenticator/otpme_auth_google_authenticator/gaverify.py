"""Verification with pam_google_authenticator's semantics, as pure functions.

Nothing here reads a file or the clock: every function takes the parsed
:class:`~.secretfile.SecretFile` and ``now`` (Unix seconds) and returns the new
file state to write back (``None`` when nothing changed).  Each rule below is
the peer's (``src/pam_google_authenticator.c``, the version Debian ships as
20191231); where our answer could differ from the peer's, it says so.

The order of one login, as the peer runs it:

1. :func:`rate_limit_check` -- before any prompt.  With ``RATE_LIMIT`` present it
   always returns a new state (this attempt's timestamp is recorded, old ones
   pruned).  When not allowed: fail without prompting, but write the state.
2. :func:`within_grace_period` -- the peer evaluates it on every login, even when
   step 1 refused, and a hit succeeds then too, without prompting and *without*
   writing the state from step 1.  (With ``grace_period`` 0 it can only hit for a
   ``LAST`` time in the future.)
3. Prompt, then :func:`verify` on the state returned by step 1.  The response is
   read as a 6-digit code first (scratch code list, then HOTP or TOTP), then as an
   8-digit scratch code.
4. On success with ``grace_period``: :func:`record_login`.  (The peer edits the
   ``LAST<n>`` line but forgets to mark the file changed, so it persists the line
   only when the same login changed something else -- ``DISALLOW_REUSE``, the HOTP
   counter, a scratch code, ``RATE_LIMIT``.  Writing it always is the documented
   behaviour; matching the peer byte for byte means writing it only then.)
5. Write the newest state if any step returned one, even on failure (the HOTP
   counter, a skew-learning attempt and the rate limit must persist).

All of this is checked against the real module: ``tests/test_ga_verify.py`` runs
random login sequences through both and compares the answer and the file bytes.

``try_first_pass``/``use_first_pass``: call :func:`verify` on the PAM_AUTHTOK with
``allow_prefix=True`` (the peer lets a password precede the code there).  If the
result is not ``final``, discard its state, prompt, and call :func:`verify` again on
the *same input state* with ``hotp_failed_before=result.hotp_failed``; the second
call's state is the one to write (the prompted response takes
``allow_prefix=forward_pass``).  ``forward_pass``: ``allow_prefix=True``; on
success ``result.password`` is what precedes the code (hand it on as PAM_AUTHTOK).

TOTP window: with ``WINDOW_SIZE`` w (default 3) the accepted steps are
``t + skew + i`` for ``i`` in ``-(w-1)//2 .. w//2``: 3 -> -1..+1, 6 -> -2..+3.
HOTP window: counters ``c .. c+w-1``; a match sets ``HOTP_COUNTER`` to match+1,
a 6-digit miss advances it by one unless ``no_increment_hotp``.
"""

from otpme_auth.otp._hmac import codes_equal, hmac_function

from .secretfile import (SecretFile, SecretFileError, _int32, _parse_resetting,
                         _scan_last, _strtoul, _u32)

_U64_MASK = (1 << 64) - 1
_SKEW_SEARCH = 25 * 60  # steps searched each way for a skewed code (peer: 25*60)

# Reasons.  Successes: scratch, hotp, totp, skew-reset.  Failures below.
NO_MATCH = "no-match"          # well-formed, but not a valid code: try the next source
BAD_FORMAT = "bad-format"      # not a 6- or 8-digit code (or a password prefix where none is allowed)
REUSED = "reused"              # DISALLOW_REUSE: this time step was already used
SKEW_LEARNING = "skew-learning"  # a valid but skewed code: remembered, login refused
SKEW_REPEAT = "skew-repeat"    # the same skewed code again: nothing learned
BAD_CONFIG = "bad-config"      # an option the peer refuses (WINDOW_SIZE, STEP_SIZE, ...)
RATE_LIMITED = "rate-limited"


class CheckResult(tuple):
    """``(ok, new_state, reason)``, with extra attributes.

    - ``password``: on success with ``allow_prefix``, the text before the code
      (a secret: it is never part of the tuple or the repr);
    - ``hotp_failed``: a 6-digit HOTP attempt failed (carry to the next attempt);
    - ``final``: the peer would stop here (success or a hard failure) rather than
      try the next source of a code.
    """

    def __new__(cls, ok, new_state, reason, password=None, hotp_failed=False):
        self = super().__new__(cls, (ok, new_state, reason))
        self.password = password
        self.hotp_failed = hotp_failed
        return self

    @property
    def ok(self) -> bool:
        return self[0]

    @property
    def new_state(self):
        return self[1]

    @property
    def reason(self) -> str:
        return self[2]

    @property
    def final(self) -> bool:
        return self[0] or self[2] not in (NO_MATCH, BAD_FORMAT)


def _code(mac, value: int) -> int:
    digest = mac((value & _U64_MASK).to_bytes(8, "big"))
    offset = digest[-1] & 0x0F
    return (int.from_bytes(digest[offset:offset + 4], "big") & 0x7FFFFFFF) % 1_000_000


def compute_code(secret: bytes, value: int) -> str:
    """The peer's ``compute_code``: 6-digit HOTP-SHA1 of ``value`` as a C unsigned long."""
    return "%06d" % _code(hmac_function(secret, "sha1"), value)


# -- before the prompt ---------------------------------------------------------------

def rate_limit_check(state: SecretFile, now: float) -> tuple[bool, SecretFile | None]:
    """``RATE_LIMIT n m``: at most ``n`` attempts in any ``m`` seconds, counted at prompt time.

    :returns: ``(allowed, new_state)``; ``new_state`` is None only without a
        ``RATE_LIMIT`` line or when the line is malformed (then not allowed, as the
        peer refuses the login and leaves the file alone)
    """
    try:
        limit = state.rate_limit
    except SecretFileError:
        return False, None
    if limit is None:
        return True, None
    attempts, interval, stamps = limit
    now_u = _u32(int(now))
    stamps = sorted((now_u,) + stamps)
    floor = _u32(now_u - interval)
    start, stop = 0, -1
    for i, stamp in enumerate(stamps):
        if stamp < floor:
            start = i + 1
        elif stamp > now_u:
            break
        stop = i
    exceeded = stop - start + 1 > attempts
    if exceeded:
        start = stop - attempts + 1
    value = f"{attempts} {interval}" + "".join(f" {stamps[i]}" for i in range(start, stop + 1))
    return not exceeded, state.with_option("RATE_LIMIT", value)


def within_grace_period(state: SecretFile, rhost: str | None, now: float, grace_period: int) -> bool:
    """True if ``rhost`` logged in successfully less than ``grace_period`` seconds ago.

    Reads the ``LAST0``..``LAST9`` lines as the peer does (first line whose text
    starts with ``rhost`` followed by a number).  No remote host, no grace.
    """
    if rhost is None:
        return False
    when = 0
    for slot in range(10):
        value = state.get(f"LAST{slot}")
        if value is None:
            continue
        i = 0
        while i < len(value) and value[i] in " \t\n\v\f\r":
            i += 1
        if not value.startswith(rhost, i):
            continue
        number, end, _ = _strtoul(value, i + len(rhost))
        if end != i + len(rhost):
            when = number
            break
    if when == 0:
        return False
    return when + int(grace_period) > int(now)


def record_login(state: SecretFile, rhost: str | None, now: float) -> SecretFile | None:
    """Remember a successful login from ``rhost`` at ``now`` (for ``grace_period``).

    Ten slots, ``LAST0``..``LAST9``: the host's own slot, else the first free
    one, else the oldest.  None without a remote host (the peer logs an error).
    """
    if rhost is None:
        return None
    now = int(now)
    oldest, oldest_index, found = now, -1, -1
    for slot in range(10):
        value = state.get(f"LAST{slot}")
        if value is None:
            if oldest:
                oldest_index, oldest = slot, 0
            continue
        parsed = _scan_last(value)
        if parsed is None:
            continue
        if parsed[0] == rhost:
            found = slot
            break
        if parsed[1] < oldest:
            oldest_index, oldest = slot, parsed[1]
    slot = found if found >= 0 else oldest_index
    # slot -1 only when every entry lies in the future; the peer then writes "LAST/".
    name = "LAST" + chr(ord("0") + slot)
    return state.with_option(name, f"{rhost} {now}")


# -- the code itself -----------------------------------------------------------------

def _invalidate(state: SecretFile, tm: int):
    """DISALLOW_REUSE: refuse a used time step, else record it (pruning old ones)."""
    value = state.get("DISALLOW_REUSE")
    if value is None:
        return True, None, "totp"
    try:
        window = state.window_size
    except SecretFileError:
        return False, None, BAD_CONFIG
    s = value
    ptr = 0
    while True:
        while ptr < len(s) and s[ptr] in " \t\r\n":
            ptr += 1
        if ptr >= len(s):
            break
        blocked, end, overflow = _strtoul(s, ptr)
        if overflow or end == ptr or (end < len(s) and s[end] not in " \t\r\n"):
            return False, None, BAD_CONFIG
        blocked = _int32(blocked)
        if blocked == tm:
            return False, None, REUSED
        if blocked - tm >= window or tm - blocked >= window:
            while end < len(s) and s[end] in " \t":
                end += 1
            s = s[:ptr] + s[end:]
        else:
            ptr = end
    s = (s + " " if s else "") + str(tm)
    return True, state.with_option("DISALLOW_REUSE", s), "totp"


def _learn_skew(state: SecretFile, skew: int, tm: int):
    """Three codes in quick succession with the same skew establish ``TIME_SKEW``."""
    entries = _parse_resetting(state.get("RESETTING_TIME_SKEW") or "")
    if entries and _u32(tm + skew) == _u32(entries[-1][0] + entries[-1][1]):
        return False, None, SKEW_REPEAT
    entries.append((_u32(tm), skew))
    del entries[:-3]
    established = False
    if len(entries) == 3:
        last_tm, last_skew = entries[0]
        total = last_skew
        established = True
        for entry_tm, entry_skew in entries[1:]:
            # The peer compares each stored skew with the *current* one.
            if (entry_tm <= last_tm or entry_tm > _u32(last_tm + 2)
                    or last_skew - skew < -1 or last_skew - skew > 1):
                established = False
                break
            last_tm, last_skew = entry_tm, entry_skew
            total += last_skew
        if established:
            average = int(total / 3)  # C division truncates toward zero
            state = state.with_option("TIME_SKEW", str(_int32(average)))
    reset = "" if established else " ".join(f"{_int32(t)}{s:+d}" for t, s in entries)
    state = state.with_option("RESETTING_TIME_SKEW", reset)
    return (True, state, "skew-reset") if established else (False, state, SKEW_LEARNING)


def _check_totp(state: SecretFile, mac, code: str, now: float, noskewadj: bool):
    if not state.totp_auth:
        return None
    try:
        step = state.step_size
        window = state.window_size
    except SecretFileError:
        return False, None, BAD_CONFIG
    tm = _int32(int(now) // step)
    if not tm:
        return False, None, BAD_CONFIG
    skew = state.time_skew
    for i in range(-((window - 1) // 2), window // 2 + 1):
        value = _int32(tm + skew + i)
        if codes_equal("%06d" % _code(mac, value), code):
            return _invalidate(state, value)
    if noskewadj:
        return None
    found = None
    wanted = int(code)
    # Search the whole range before deciding, as the peer does, so the time taken
    # does not tell how far off the code was.
    for i in range(_SKEW_SEARCH):
        for value in (tm - i, tm + i):
            if _code(mac, value) == wanted and found is None:
                found = value - tm
    if found is None:
        return None
    return _learn_skew(state, found, tm)


def _check_hotp(state: SecretFile, mac, code: str, counter: int):
    try:
        window = state.window_size
    except SecretFileError:
        return False, None, BAD_CONFIG
    for i in range(window):
        if codes_equal("%06d" % _code(mac, counter + i), code):
            return True, state.with_option("HOTP_COUNTER", str(counter + i + 1)), "hotp"
    return None


def verify(state: SecretFile, code: str, now: float, *, noskewadj: bool = False,
           no_increment_hotp: bool = False, allow_prefix: bool = False,
           hotp_failed_before: bool = False) -> CheckResult:
    """Check one response against the secret file, as the peer does.

    :param state: the parsed file (after :func:`rate_limit_check`)
    :param code: what the user typed (or the PAM_AUTHTOK)
    :param now: Unix time in seconds
    :param noskewadj: do not learn a clock skew from skewed codes
    :param no_increment_hotp: do not advance the HOTP counter after a failed code
    :param allow_prefix: accept text before the code (``forward_pass``, and the
        PAM_AUTHTOK under ``try_first_pass``/``use_first_pass``)
    :param hotp_failed_before: an earlier attempt of this login failed a HOTP code
    :returns: a :class:`CheckResult` ``(ok, new_state, reason)``
    """
    try:
        mac = hmac_function(state.secret, "sha1")
    except SecretFileError:
        return CheckResult(False, None, BAD_CONFIG)
    if not isinstance(code, str):
        return CheckResult(False, None, BAD_FORMAT)
    counter = state.hotp_counter
    must_advance = hotp_failed_before
    result = None
    password = None
    reason = BAD_FORMAT
    for length in (6, 8):
        if len(code) < length:
            continue
        tail = code[-length:]
        if not all("0" <= ch <= "9" for ch in tail) or (length == 8 and tail[0] == "0"):
            continue
        prefix = code[:-length]
        if prefix and not allow_prefix:
            continue
        reason = NO_MATCH
        number = int(tail)
        scratch = state.without_scratch_code(number)
        if scratch is not None:
            result, password = (True, scratch, "scratch"), prefix
            break
        if length == 8:
            continue  # a time-based or counter-based code never has eight digits
        if counter > 0:
            result = _check_hotp(state, mac, tail, counter)
            if result is None:
                must_advance = True
                continue
            must_advance = result[0] is False and must_advance
        else:
            result = _check_totp(state, mac, tail, now, noskewadj)
            if result is None:
                continue
        password = prefix
        break
    if result is None:
        result = (False, None, reason)
    ok, new_state, reason = result
    if must_advance and not no_increment_hotp:
        new_state = (new_state or state).with_option("HOTP_COUNTER", str(counter + 1))
    return CheckResult(ok, new_state, reason, password if ok else None, must_advance)


__all__ = [
    "BAD_CONFIG", "BAD_FORMAT", "NO_MATCH", "RATE_LIMITED", "REUSED", "SKEW_LEARNING",
    "SKEW_REPEAT", "CheckResult", "compute_code", "rate_limit_check", "record_login",
    "verify", "within_grace_period",
]
