"""ssh signatures: the wire format's strings, which algorithm fits which key, and the check.

One parser and one verifier for the three places that check an ssh-agent signature:
the sshagent plugin (``sshagent_keys``), the offline plugin (offline ssh records) and
the server (ssh tokens).  Kept in one place so that all three accept exactly the same
signatures: never ``ssh-rsa`` (SHA-1), and an algorithm that fits the key.

Importing this module costs nothing; ``verify`` imports ``cryptography`` when it runs.
"""

import base64

#: Key types, and the signature algorithms each may answer with (never ssh-rsa, SHA-1).
ALGORITHMS = {
    "ssh-ed25519": ("ssh-ed25519",),
    "ecdsa-sha2-nistp256": ("ecdsa-sha2-nistp256",),
    "ecdsa-sha2-nistp384": ("ecdsa-sha2-nistp384",),
    "ecdsa-sha2-nistp521": ("ecdsa-sha2-nistp521",),
    "ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256"),
}


class SignatureRefused(ValueError):
    """A signature that cannot be accepted; the text says why (no secret in it)."""


def read_string(buf, pos):
    """The ssh ``string`` at ``pos`` of ``buf`` and the position after it; ValueError if short."""
    if pos + 4 > len(buf):
        raise ValueError("short ssh string")
    n = int.from_bytes(buf[pos:pos + 4], "big")
    if pos + 4 + n > len(buf):
        raise ValueError("short ssh string")
    return buf[pos + 4:pos + 4 + n], pos + 4 + n


def pack_string(data):
    """``data`` as an ssh ``string`` (a 4-byte big-endian length, then the bytes)."""
    return len(data).to_bytes(4, "big") + data


def key_type(blob):
    """The type name that starts an ssh public key blob; ValueError if it has none."""
    name, _ = read_string(blob, 0)
    return name.decode("ascii", "replace")


def check_algorithm(ktype, sig_blob):
    """The signature blob's algorithm if a ``ktype`` key may answer with it.

    Needs no cryptography: a host checks an agent's answer with it before sending it
    to a remote verifier.  :raises SignatureRefused: saying why (ssh-rsa named as SHA-1).
    """
    try:
        algo, _ = read_string(sig_blob, 0)
    except ValueError:
        raise SignatureRefused("not an ssh signature") from None
    algo = algo.decode("ascii", "replace")
    allowed = ALGORITHMS.get(ktype)
    if allowed is None:
        raise SignatureRefused("key type %s is not accepted" % ktype[:40])
    if algo not in allowed:
        if algo == "ssh-rsa":
            raise SignatureRefused("an ssh-rsa (SHA-1) signature: refused, only rsa-sha2-256/512")
        raise SignatureRefused("signature algorithm %s does not fit a %s key" % (algo[:40], ktype))
    return algo


def verify(public_blob, sig_blob, data):
    """Check the ssh signature blob ``sig_blob`` over ``data`` with the key ``public_blob``.

    :returns: None when the signature is good.
    :raises SignatureRefused: saying why not (the algorithm, ssh-rsa, a bad signature).
    """
    try:
        ktype = key_type(public_blob)
    except ValueError:
        raise SignatureRefused("not an ssh public key") from None
    algo = check_algorithm(ktype, sig_blob)
    if not _verifies(public_blob, ktype, algo, sig_blob, data):
        raise SignatureRefused("the signature does not verify with the %s key" % ktype)


def verify_line(public_key, sig_blob, data):
    """:func:`verify` with the key as an OpenSSH line (``ssh-ed25519 AAAA... comment``)."""
    parts = public_key.split()
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (IndexError, ValueError):
        raise SignatureRefused("not an OpenSSH public key") from None
    verify(blob, sig_blob, data)


def _verifies(public_blob, ktype, algo, sig_blob, data):
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    from cryptography.hazmat.primitives.serialization import load_ssh_public_key
    try:
        _, pos = read_string(sig_blob, 0)
        sig, _ = read_string(sig_blob, pos)
        key = load_ssh_public_key(ktype.encode() + b" " + base64.b64encode(public_blob))
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(sig, data)
            return True
        if isinstance(key, ec.EllipticCurvePublicKey):
            r, p = read_string(sig, 0)
            s, _ = read_string(sig, p)
            h = {256: hashes.SHA256(), 384: hashes.SHA384(), 521: hashes.SHA512()}[key.curve.key_size]
            key.verify(encode_dss_signature(int.from_bytes(r, "big"), int.from_bytes(s, "big")),
                       data, ec.ECDSA(h))
            return True
        if isinstance(key, rsa.RSAPublicKey):
            h = hashes.SHA256() if algo == "rsa-sha2-256" else hashes.SHA512()
            key.verify(sig, data, padding.PKCS1v15(), h)
            return True
    except (ValueError, TypeError, KeyError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return False
