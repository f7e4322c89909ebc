"""The offline ssh records (sshlogin.py): authenticated, bound to user and token, expiring;
the signature check (never ssh-rsa SHA-1). Through real libpam: plugins/sshagent/tests/
test_sshagent_offline.py."""

import base64
import os
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from otpme_auth_offline import sshlogin
from otpme_auth_offline.cache import CacheExpired, OfflineCache, PinMismatch


def _s(b):
    return len(b).to_bytes(4, "big") + b


def public_line(key):
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode()


def ssh_sign(key, data, algo=None):
    """An ssh signature blob, as an agent answers."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return _s(b"ssh-ed25519") + _s(key.sign(data))
    if isinstance(key, ec.EllipticCurvePrivateKey):
        size = key.curve.key_size
        h = {256: hashes.SHA256(), 384: hashes.SHA384(), 521: hashes.SHA512()}[size]
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(h)))
        mp = lambda n: _s(n.to_bytes((n.bit_length() + 8) // 8, "big"))  # noqa: E731
        return _s(b"ecdsa-sha2-nistp%d" % size) + _s(mp(r) + mp(s))
    h = {"rsa-sha2-512": hashes.SHA512(), "rsa-sha2-256": hashes.SHA256(),
         "ssh-rsa": hashes.SHA1()}[algo]
    return _s(algo.encode()) + _s(key.sign(data, padding.PKCS1v15(), h))


ED_LINE = public_line(ed25519.Ed25519PrivateKey.generate())
RSA_LINE = public_line(rsa.generate_private_key(65537, 2048))
ENTRY = {"token": "alice/ssh", "type": "ssh", "expiry": 2_000_000_000, "unused_expiry": 3600}


@pytest.fixture
def cache(tmp_path):
    os.chmod(tmp_path, 0o700)
    return OfflineCache(str(tmp_path / "offline"))


def store(cache, key, user="alice", token="alice/ssh", now=1_000_000_000):
    sshlogin.store(cache, user, token, dict(ENTRY, token=token, public_key=public_line(key)),
                   {"status": "ok", "user": user, "token": token, "token_type": "ssh",
                    "session": {"id": "secret-session"}, "offline": [ENTRY]}, now=now)


KEYS = {
    "ed25519": lambda: ed25519.Ed25519PrivateKey.generate(),
    "ecdsa256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ecdsa384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "ecdsa521": lambda: ec.generate_private_key(ec.SECP521R1()),
    "rsa": lambda: rsa.generate_private_key(65537, 2048),
}


@pytest.mark.parametrize("kind", sorted(KEYS))
def test_a_fresh_signature_of_every_type_verifies(cache, kind):
    key = KEYS[kind]()
    store(cache, key)
    nonce = os.urandom(32)
    algos = ("rsa-sha2-512", "rsa-sha2-256") if kind == "rsa" else (None,)
    for algo in algos:
        record = sshlogin.use(cache, "alice", "alice/ssh", public_line(key),
                              lambda r: sshlogin.verify_signature(
                                  r["public_key"], ssh_sign(key, nonce, algo), nonce),
                              now=1_000_000_100)
        # what an ssh login unlocks: the answer, never a session
        assert record["answer"]["session"] is None and "offline" not in record["answer"]
    # ECDSA signs differently every time; both verify (no key depends on the signature)
    if kind.startswith("ecdsa"):
        assert ssh_sign(key, nonce) != ssh_sign(key, nonce)


def test_ssh_rsa_sha1_and_other_nonces_are_refused(cache):
    key = KEYS["rsa"]()
    nonce = os.urandom(32)
    with pytest.raises(sshlogin.RecordRefused, match=r"ssh-rsa \(SHA-1\) signature: refused"):
        sshlogin.verify_signature(public_line(key), ssh_sign(key, nonce, "ssh-rsa"), nonce)
    with pytest.raises(sshlogin.RecordRefused, match="does not verify"):
        sshlogin.verify_signature(public_line(key), ssh_sign(key, nonce, "rsa-sha2-512"),
                                  os.urandom(32))
    ed = KEYS["ed25519"]()
    with pytest.raises(sshlogin.RecordRefused, match="does not fit"):
        sshlogin.verify_signature(public_line(key), ssh_sign(ed, nonce), nonce)
    with pytest.raises(sshlogin.RecordRefused, match="not an ssh signature"):
        sshlogin.verify_signature(public_line(key), b"\x00\x00\x00", nonce)


def test_a_record_is_bound_to_its_user_token_and_host_key(cache, tmp_path):
    key = KEYS["ed25519"]()
    store(cache, key)
    store(cache, key, user="bob", token="bob/ssh")
    alice = os.path.join(cache.root, "alice", "ssh.alice%2Fssh")
    bob = os.path.join(cache.root, "bob", "ssh.bob%2Fssh")
    # copied to another user or token: refused
    shutil.copyfile(alice, bob)
    with pytest.raises(sshlogin.RecordRefused, match="does not authenticate"):
        sshlogin.read(cache, "bob", "bob/ssh", now=1_000_000_001)
    # every byte matters
    data = open(alice, "rb").read()
    for i in range(0, len(data), 7):
        with open(alice, "wb") as fh:
            fh.write(data[:i] + bytes([data[i] ^ 1]) + data[i + 1:])
        with pytest.raises(sshlogin.RecordRefused):
            sshlogin.read(cache, "alice", "alice/ssh", now=1_000_000_001)
    with open(alice, "wb") as fh:
        fh.write(data)
    assert sshlogin.read(cache, "alice", "alice/ssh", now=1_000_000_001)["token"] == "alice/ssh"
    # another host key (the key replaced, or the cache copied to another host): refused
    os.unlink(sshlogin.key_path(cache))
    with pytest.raises(sshlogin.RecordRefused, match="does not authenticate"):
        sshlogin.read(cache, "alice", "alice/ssh", now=1_000_000_001)


def test_expiry_and_pin(cache):
    key = KEYS["ed25519"]()
    store(cache, key, now=1_000_000_000)
    with pytest.raises(CacheExpired):   # unused for longer than unused_expiry
        sshlogin.read(cache, "alice", "alice/ssh", now=1_000_000_000 + 3600)
    with pytest.raises(CacheExpired):
        sshlogin.use(cache, "alice", "alice/ssh", public_line(key), lambda r: None,
                     now=1_000_000_000 + 3600)
    assert sshlogin.tokens(cache, "alice") == []   # removed
    store(cache, key, now=1_000_000_000)
    # a pin to another token refuses the record
    os.makedirs(os.path.join(cache.root, "alice"), exist_ok=True)
    with open(os.path.join(cache.root, "alice", "pin"), "w") as fh:
        fh.write("alice/pass\n")
    os.chmod(os.path.join(cache.root, "alice", "pin"), 0o600)
    with pytest.raises(PinMismatch):
        sshlogin.use(cache, "alice", "alice/ssh", public_line(key), lambda r: None,
                     now=1_000_000_001)


def test_the_host_key_beside_a_writable_directory_is_refused(tmp_path):
    os.chmod(tmp_path, 0o777)
    try:
        cache = OfflineCache(str(tmp_path / "offline"))
        with pytest.raises(Exception, match="mode"):
            store(cache, KEYS["ed25519"]())
    finally:
        os.chmod(tmp_path, 0o700)
    assert not os.path.exists(str(tmp_path / "offline.ssh-key"))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.binary(max_size=40))
def test_any_signature_blob_is_refused_with_a_clear_error(sig, data):
    for line in (ED_LINE, RSA_LINE):
        with pytest.raises(sshlogin.RecordRefused):
            sshlogin.verify_signature(line, sig, data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_any_record_file_is_refused_with_a_clear_error(data):
    with pytest.raises(sshlogin.RecordRefused):
        sshlogin._parse(sshlogin.MAGIC + data, b"k" * 32, "alice", "alice/ssh", "record")
    with pytest.raises(sshlogin.RecordRefused):
        sshlogin._parse(data, b"k" * 32, "alice", "alice/ssh", "record")
