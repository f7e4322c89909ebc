"""HMAC and digests for the OTP primitives, in one place.

The digests are CPython's own built-in modules (``_sha1``, ``_sha256``,
``_sha512``: the implementations ``hashlib`` falls back to), and HMAC is the
RFC 2104 construction over them.  Importing :mod:`hashlib` or :mod:`hmac` loads
OpenSSL (``_hashlib``, ~3-5 ms), which was the largest single cost of a cold TOTP
login (issue 11); the built-in modules load in well under 0.1 ms.  Where they
are missing (a Python built without them), :mod:`hashlib`/:mod:`hmac` are used.
The results are the same bytes (tested against :mod:`hmac` and RFC 4226/6238).
:func:`hmac_function` prepares the key's pads once and copies the states per
message, which keeps a google-authenticator skew search (up to ~1,500 HMACs) fast.
"""

try:
    from _operator import _compare_digest as compare_digest
except ImportError:  # pragma: no cover - every CPython has it
    from hmac import compare_digest

#: Block sizes; the keys are also the supported names.
_BLOCKS = {"sha1": 64, "sha256": 64, "sha512": 128}


def _check(name):
    if name not in _BLOCKS:
        raise ValueError("unsupported hash")


def _builtin(name):
    """The built-in constructor of digest ``name`` (``_sha1.sha1``), imported when first
    used (a TOTP login needs only SHA-1), or None in a Python built without them."""
    try:
        return getattr(__import__("_" + name), name)
    except ImportError:  # pragma: no cover - a Python without the built-in digests
        return None


def hash_digest(name: str, data: bytes) -> bytes:
    """Plain digest of ``data`` with ``sha1``, ``sha256`` or ``sha512``."""
    _check(name)
    ctor = _builtin(name)
    if ctor is None:  # pragma: no cover
        import hashlib
        return hashlib.new(name, data).digest()
    return ctor(data).digest()


def _pads(key: bytes, ctor, block: int):
    if len(key) > block:
        key = ctor(key).digest()
    # The pads as integer XORs: no translation tables to build at import (every cold login)
    key = int.from_bytes(key.ljust(block, b"\0"), "big")
    return (ctor((key ^ int.from_bytes(b"\x36" * block, "big")).to_bytes(block, "big")),
            ctor((key ^ int.from_bytes(b"\x5c" * block, "big")).to_bytes(block, "big")))


def hmac_function(key: bytes, name: str):
    """A function ``msg -> HMAC(key, msg)``, with the key's pads computed once."""
    _check(name)
    ctor = _builtin(name)
    if ctor is None:  # pragma: no cover
        import hmac
        base = hmac.new(bytes(key), digestmod=name)

        def mac(msg: bytes) -> bytes:
            h = base.copy()
            h.update(msg)
            return h.digest()
        return mac
    inner, outer = _pads(bytes(key), ctor, _BLOCKS[name])

    def mac(msg: bytes) -> bytes:
        i = inner.copy()
        i.update(msg)
        o = outer.copy()
        o.update(i.digest())
        return o.digest()

    return mac


def hmac_digest(key: bytes, msg: bytes, name: str) -> bytes:
    """HMAC of ``msg`` under ``key`` (one shot)."""
    return hmac_function(key, name)(msg)


def codes_equal(expected: str, given: str) -> bool:
    """Compare two codes in constant time (for equal lengths).

    Accepts ``str`` or ``bytes``; never raises for odd input, it just answers False.
    """
    if isinstance(expected, str):
        expected = expected.encode("utf-8", "surrogatepass")
    if isinstance(given, str):
        given = given.encode("utf-8", "surrogatepass")
    if not isinstance(expected, (bytes, bytearray)) or not isinstance(given, (bytes, bytearray)):
        return False
    return compare_digest(bytes(expected), bytes(given))


__all__ = ["codes_equal", "compare_digest", "hash_digest", "hmac_digest", "hmac_function"]
