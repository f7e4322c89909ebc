"""Base32 (RFC 4648 alphabet) exactly as google-authenticator-libpam reads it.

The peer's decoder (``src/base32.c``) is more forgiving than
:func:`base64.b32decode`, and a secret file that works there must work here:

- letters are case-insensitive;
- spaces, tabs, CR, LF and ``-`` are skipped anywhere (people group secrets);
- the commonly mistyped digits ``0``, ``1`` and ``8`` are read as ``O``, ``L``
  and ``B``;
- no padding is needed, and trailing bits that do not fill a byte are dropped;
- any other character, including ``=``, makes the whole input invalid.

``base64`` cannot express the skipping or the digit mapping, so the decoder is
written out here (it is a few lines and imports nothing).

The encoder produces what ``google-authenticator(1)`` writes: upper case, no
padding.
"""

from otpme_auth.otp import OtpError

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_SKIP = frozenset(" \t\r\n-")
_VALUES = {ch: i for i, ch in enumerate(_ALPHABET)}
_VALUES.update({ch.lower(): i for ch, i in list(_VALUES.items()) if ch.isalpha()})
# The peer reads these digits as the letters they are usually mistaken for.
_VALUES.update({"0": _VALUES["O"], "1": _VALUES["L"], "8": _VALUES["B"]})


def b32decode(text: str, *, allow_padding: bool = False) -> bytes:
    """Decode base32 with google-authenticator's tolerance (see the module doc).

    :param text: the encoded secret (``str``; ``bytes`` are read as ASCII)
    :param allow_padding: also accept trailing ``=`` (as found in ``otpauth://``
        URIs from other tools); the peer itself rejects ``=``, so the default is off
    :returns: the decoded bytes, possibly empty if ``text`` held no base32 digits
    :raises OtpError: on any character outside the alphabet; the message gives the
        position only, never the text
    """
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("latin-1")
    if not isinstance(text, str):
        raise OtpError("base32 input must be text")
    if allow_padding:
        text = text.rstrip(" \t\r\n-").rstrip("=")
    out = bytearray()
    buffer = 0
    bits = 0
    values = _VALUES
    for pos, ch in enumerate(text):
        if ch in _SKIP:
            continue
        value = values.get(ch)
        if value is None:
            raise OtpError(f"invalid base32 character at position {pos}")
        buffer = (buffer << 5) | value
        bits += 5
        if bits >= 8:
            bits -= 8
            out.append(buffer >> bits)
            buffer &= (1 << bits) - 1
    return bytes(out)


def b32encode(data: bytes, *, padding: bool = False) -> str:
    """Encode ``data`` as upper-case base32, without padding unless asked.

    This is what ``google-authenticator(1)`` writes on the first line of the
    secret file.
    """
    if not isinstance(data, (bytes, bytearray)):
        raise OtpError("base32 input must be bytes")
    out = []
    buffer = 0
    bits = 0
    for byte in bytes(data):
        buffer = ((buffer << 8) | byte) & 0xFFF
        bits += 8
        while bits >= 5:
            bits -= 5
            out.append(_ALPHABET[(buffer >> bits) & 0x1F])
    if bits:
        out.append(_ALPHABET[(buffer << (5 - bits)) & 0x1F])
    if padding and len(out) % 8:
        out.append("=" * (8 - len(out) % 8))
    return "".join(out)


__all__ = ["b32decode", "b32encode"]
