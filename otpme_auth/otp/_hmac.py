"""HMAC and digests for the OTP primitives: the standard library's, in one place.

We use :mod:`hmac` and :mod:`hashlib` (OpenSSL) rather than anything written
here: importing them costs ~3 ms on the login path, which the 2x-floor budget
affords (docs/performance.md), and a hand-made HMAC is not worth that saving.
:func:`hmac_function` prepares the key once and copies the state per message,
which keeps a google-authenticator skew search (up to ~1,500 HMACs) fast.
"""

from __future__ import annotations

import hashlib
import hmac
from hmac import compare_digest

_NAMES = ("sha1", "sha256", "sha512")


def hash_digest(name: str, data: bytes) -> bytes:
    """Plain digest of ``data`` with ``sha1``, ``sha256`` or ``sha512``."""
    if name not in _NAMES:
        raise ValueError("unsupported hash")
    return hashlib.new(name, data).digest()


def hmac_function(key: bytes, name: str):
    """A function ``msg -> HMAC(key, msg)``, with the key's pads computed once."""
    if name not in _NAMES:
        raise ValueError("unsupported hash")
    base = hmac.new(bytes(key), digestmod=name)

    def mac(msg: bytes) -> bytes:
        h = base.copy()
        h.update(msg)
        return h.digest()

    return mac


def hmac_digest(key: bytes, msg: bytes, name: str) -> bytes:
    """HMAC of ``msg`` under ``key`` (one shot)."""
    if name not in _NAMES:
        raise ValueError("unsupported hash")
    return hmac.digest(bytes(key), msg, name)


__all__ = ["compare_digest", "hash_digest", "hmac_digest", "hmac_function"]
