"""HOTP/TOTP for the server: a thin adapter over the shared primitives in
:mod:`otpme_auth.otp.hotp` (pure functions, no PAM; the only non-server module the
server imports), plus the window search the server needs.
"""

from otpme_auth.otp.hotp import codes_equal, totp_counter
from otpme_auth.otp.hotp import hotp as _hotp
from otpme_auth.otp.hotp import match_counter as _match_counter


def hotp(secret: bytes, counter: int, digits: int = 6, algorithm: str = "SHA1") -> str:
    """Return the HOTP code of ``secret`` at ``counter`` as a zero-padded string."""
    return _hotp(secret, counter, digits=digits, algorithm=algorithm)


def totp_step(now: float, period: int = 30) -> int:
    """Return the TOTP time step of the Unix time ``now``."""
    return totp_counter(now, step=period)


def totp(secret: bytes, now: float, digits: int = 6, period: int = 30,
         algorithm: str = "SHA1") -> str:
    """Return the TOTP code of ``secret`` at Unix time ``now``."""
    return hotp(secret, totp_step(now, period), digits, algorithm)


def match_counter(secret: bytes, code: str, first: int, last: int, digits: int = 6,
                  algorithm: str = "SHA1") -> int | None:
    """Return the first counter in [first, last] whose HOTP equals ``code``, or None
    (the shared constant-time window search, :func:`otpme_auth.otp.hotp.match_counter`)."""
    return _match_counter(secret, code, first, last, digits=digits, algorithm=algorithm)
