"""Key material of a realm: the CA, certificates, the store key, password hashes.

ECDSA P-256 everywhere; OTP and HMAC secrets are encrypted with AES-256-GCM under
the store key (``DIR/store.key``) with the token's name as associated data, so a
ciphertext copied onto another token does not decrypt.
"""

import datetime
import hashlib
import hmac
import ipaddress
import json
import os
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .errors import BadRequest, ConfigError

# The documented argon2id cost for password tokens (docs/server.md); the config may
# raise or lower it, existing hashes keep the cost they were made with.
DEFAULT_ARGON2 = {"time_cost": 2, "memory_cost": 19456, "parallelism": 1}


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def write_private(path: str, data: bytes) -> None:
    """Write ``data`` to a new file readable by the owner alone (0600), atomically."""
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_ca(realm: str, days: int = 3650):
    """Return (key, certificate) of a new self-signed realm CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"otpme-auth CA {realm}"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, realm)])
    now = _now()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


def _issue(ca_key, ca_cert, public_key, cn: str, days: int, server: bool, names=()):
    now = _now()
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
               .issuer_name(ca_cert.subject).public_key(public_key)
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage(
                   [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
                   critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                              critical=False))
    if names:
        alt = []
        for n in names:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                alt.append(x509.DNSName(n))
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def make_server_cert(ca_key, ca_cert, cn: str, names, days: int = 825):
    """Return (key, certificate) for the server, with ``names`` as subjectAltNames."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key, _issue(ca_key, ca_cert, key.public_key(), cn, days, True, names)


CSR_EC_CURVES = ("secp256r1", "secp384r1", "secp521r1")
CSR_RSA_MIN_BITS, CSR_RSA_MAX_BITS = 2048, 4096


def sign_host_csr(ca_key, ca_cert, csr_pem: str, host: str, days: int = 365):
    """Check a host's CSR and return its client certificate (CN = the host name).

    The CSR's own subject is ignored: the name comes from the joined host object.
    Raises BadRequest for a CSR that does not parse or whose signature is wrong.
    """
    try:
        csr = x509.load_pem_x509_csr(csr_pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise BadRequest("bad_csr", "csr is not a PEM certificate signing request") from None
    # Key limits before the (costly, for big RSA keys) signature check.
    try:
        pub = csr.public_key()
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise BadRequest("bad_csr", "csr key type not supported (use EC P-256/P-384/P-521 "
                         "or RSA 2048-4096 bits)") from None
    if isinstance(pub, ec.EllipticCurvePublicKey):
        if pub.curve.name not in CSR_EC_CURVES:
            raise BadRequest("bad_csr", f"csr EC curve {pub.curve.name[:32]} not supported "
                             "(use P-256, P-384 or P-521)")
    elif isinstance(pub, rsa.RSAPublicKey):
        if not CSR_RSA_MIN_BITS <= pub.key_size <= CSR_RSA_MAX_BITS:
            raise BadRequest("bad_csr", f"csr RSA key of {pub.key_size} bits; "
                             f"use {CSR_RSA_MIN_BITS}-{CSR_RSA_MAX_BITS} bits (or EC)")
        if pub.public_numbers().e != 65537:
            raise BadRequest("bad_csr", "csr RSA public exponent must be 65537")
    else:
        raise BadRequest("bad_csr", "csr key type not supported (use EC P-256/P-384/P-521 "
                         "or RSA 2048-4096 bits)")
    if not csr.is_signature_valid:
        raise BadRequest("bad_csr", "csr signature does not verify")
    return _issue(ca_key, ca_cert, pub, host, days, False)


def cert_pem(cert) -> bytes:
    """PEM bytes of a certificate."""
    return cert.public_bytes(serialization.Encoding.PEM)


def cert_fingerprint(der: bytes) -> str:
    """SHA-256 hex fingerprint of a DER certificate (how hosts are pinned in the store)."""
    return hashlib.sha256(der).hexdigest()


def init_pki(directory: str, realm: str, site: str, names) -> None:
    """Create ca.key/ca.pem and server.key/server.pem in ``directory`` (keys 0600)."""
    ca_key, ca_cert = make_ca(realm)
    srv_key, srv_cert = make_server_cert(ca_key, ca_cert, f"{site}.{realm}",
                                         list(names) + [f"{site}.{realm}"])
    write_private(os.path.join(directory, "ca.key"), _key_pem(ca_key))
    write_private(os.path.join(directory, "server.key"), _key_pem(srv_key))
    with open(os.path.join(directory, "ca.pem"), "wb") as f:
        f.write(cert_pem(ca_cert))
    with open(os.path.join(directory, "server.pem"), "wb") as f:
        f.write(cert_pem(srv_cert))


def load_ca(directory: str):
    """Return (key, certificate) of the realm CA stored in ``directory``."""
    try:
        with open(os.path.join(directory, "ca.key"), "rb") as f:
            key = serialization.load_pem_private_key(f.read(), None)
        with open(os.path.join(directory, "ca.pem"), "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
    except OSError as exc:
        raise ConfigError(f"cannot read the realm CA in {directory}: {exc.strerror}") from None
    return key, cert


class SecretBox:
    """AES-256-GCM encryption of token secrets under the store key."""

    def __init__(self, key: bytes):
        if len(key) != 32:
            raise ConfigError("store key must be 32 bytes")
        self._aead = AESGCM(key)
        self._mac_key = hashlib.sha256(b"otpme-auth jotp\0" + key).digest()
        self._pin_key = hashlib.sha256(b"otpme-auth pin\0" + key).digest()
        self._revision_key = hashlib.sha256(b"otpme-auth offline key revision\0" + key).digest()

    @classmethod
    def from_dir(cls, directory: str) -> "SecretBox":
        """Load DIR/store.key."""
        try:
            with open(os.path.join(directory, "store.key"), "rb") as f:
                return cls(f.read())
        except OSError as exc:
            raise ConfigError(f"cannot read the store key in {directory}: {exc.strerror}") from None

    def seal(self, plaintext: bytes, context: str) -> str:
        """Encrypt; ``context`` (the token name) is bound as associated data."""
        nonce = os.urandom(12)
        return (nonce + self._aead.encrypt(nonce, plaintext, context.encode())).hex()

    def open(self, sealed: str, context: str) -> bytes:
        """Decrypt what :meth:`seal` produced for the same ``context``."""
        raw = bytes.fromhex(sealed)
        return self._aead.decrypt(raw[:12], raw[12:], context.encode())

    def join_digest(self, host: str, jotp: str) -> str:
        """Keyed hash of a JOTP (random, 100+ bits, so a keyed SHA-256 suffices)."""
        return hmac.new(self._mac_key, f"{host}\0{jotp}".encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()

    def offline_revision(self, parts: list) -> str:
        """The ``key_revision`` of an offline entry: a keyed hash of what keys the client's
        cache (the password hash, the PIN hash, the OTP secret and digits).

        It changes exactly when one of them does; keyed from store.key, it tells
        nobody anything about them (docs/offline.md, "An online login derives no key").
        """
        data = json.dumps(parts, separators=(",", ":"), sort_keys=True).encode()
        return hmac.new(self._revision_key, data, hashlib.sha256).hexdigest()

    def pin_input(self, token: str, pin: str) -> str:
        """A token PIN as stored: HMAC-SHA256 of (token, PIN) under a key from store.key.

        A 4-digit PIN falls to 10,000 guesses at any hash cost; keyed from
        store.key, a copy of the database alone cannot test PINs at all, and a
        hash moved to another token does not verify.
        """
        return hmac.new(self._pin_key, f"{token}\0{pin}".encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


class Passwords:
    """argon2id hashing and checking of token passwords."""

    def __init__(self, params: dict | None = None):
        p = dict(DEFAULT_ARGON2, **(params or {}))
        self.params = p
        self._ph = PasswordHasher(time_cost=p["time_cost"], memory_cost=p["memory_cost"],
                                  parallelism=p["parallelism"])

    def hash(self, password: str) -> str:
        """Return the argon2id PHC string of ``password``."""
        return self._ph.hash(_credential_bytes(password))

    def verify(self, phc: str, password: str) -> bool:
        """True when ``password`` matches ``phc``; never raises for a mismatch."""
        try:
            return self._ph.verify(phc, _credential_bytes(password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def _credential_bytes(value: str) -> bytes:
    """A credential as bytes: UTF-8, and a lone surrogate (JSON allows ``\\ud800``)
    encoded as itself, so it is a wrong credential (counted), never a server error.
    Valid text encodes exactly as plain UTF-8: stored hashes keep verifying."""
    return value.encode("utf-8", "surrogatepass")


def random_password(length: int = 16) -> str:
    """A generated password from an unambiguous alphabet."""
    alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))


def random_pin(length: int = 4) -> str:
    """A generated token PIN: ``length`` random digits."""
    return "".join(secrets.choice("0123456789") for _ in range(length))


def random_jotp() -> str:
    """A join one-time password: 20 base32 characters (100 bits), grouped for reading."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    raw = "".join(secrets.choice(alphabet) for _ in range(20))
    return "-".join(raw[i:i + 5] for i in range(0, 20, 5))
