"""otpme_auth.sshsig: the one ssh signature check of the sshagent and offline plugins and the server.

The vectors come from OpenSSH itself: ``ssh-keygen -Y sign`` (PROTOCOL.sshsig) signs a
message with each key type we accept; the signature inside its armour is the same
``string algo, string sig`` blob an ssh-agent answers with, over the SSHSIG
preamble.
"""

import base64
import hashlib
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from otpme_auth.sshsig import (SignatureRefused, check_algorithm, pack_string, read_string, verify,
                               verify_line)

KEYS = [("ed25519", []), ("ecdsa", ["-b", "256"]), ("ecdsa", ["-b", "384"]),
        ("ecdsa", ["-b", "521"]), ("rsa", ["-b", "3072"])]


def openssh_signature(tmp_path, kind, bits, message):
    """(public key line, signature blob, signed data) made by ssh-keygen -Y sign."""
    if not shutil.which("ssh-keygen"):
        pytest.fail("ssh-keygen (openssh-client) is needed")
    key = tmp_path / ("id_%s%s" % (kind, "".join(bits)))
    subprocess.run(["ssh-keygen", "-q", "-t", kind, *bits, "-N", "", "-f", str(key)], check=True)
    msg = tmp_path / "message"
    msg.write_bytes(message)
    subprocess.run(["ssh-keygen", "-q", "-Y", "sign", "-f", str(key), "-n", "file", str(msg)],
                   check=True, capture_output=True)
    armour = (tmp_path / "message.sig").read_text().splitlines()
    blob = base64.b64decode("".join(line for line in armour if not line.startswith("-----")))
    assert blob[:6] == b"SSHSIG"
    pos = 10                                   # magic, uint32 version
    public, pos = read_string(blob, pos)
    namespace, pos = read_string(blob, pos)
    reserved, pos = read_string(blob, pos)
    hash_alg, pos = read_string(blob, pos)
    signature, _ = read_string(blob, pos)
    digest = hashlib.new(hash_alg.decode(), message).digest()
    signed = (b"SSHSIG" + pack_string(namespace) + pack_string(reserved) + pack_string(hash_alg)
              + pack_string(digest))
    line = (tmp_path / (key.name + ".pub")).read_text()
    assert base64.b64decode(line.split()[1]) == public
    return line, signature, signed


@pytest.mark.parametrize("kind,bits", KEYS, ids=lambda v: v if isinstance(v, str) else "".join(v))
def test_openssh_signatures_verify_and_altered_data_does_not(tmp_path, kind, bits):
    line, signature, signed = openssh_signature(tmp_path, kind, bits, b"a nonce from the host")
    verify_line(line, signature, signed)
    with pytest.raises(SignatureRefused, match="does not verify"):
        verify_line(line, signature, signed[:-1] + bytes([signed[-1] ^ 1]))


def test_a_signature_is_checked_against_the_key_given(tmp_path):
    line, signature, signed = openssh_signature(tmp_path, "ed25519", [], b"data")
    (tmp_path / "other").mkdir()
    other, _, _ = openssh_signature(tmp_path / "other", "ed25519", [], b"data")
    with pytest.raises(SignatureRefused, match="does not verify"):
        verify_line(other, signature, signed)


def test_ssh_rsa_sha1_is_refused_even_when_it_verifies():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    data = b"challenge"
    blob = pack_string(b"ssh-rsa") + pack_string(key.sign(data, padding.PKCS1v15(), hashes.SHA1()))
    line = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode()
    with pytest.raises(SignatureRefused, match=r"ssh-rsa \(SHA-1\)"):
        verify_line(line, blob, data)


def test_an_algorithm_that_does_not_fit_the_key_is_refused(tmp_path):
    line, signature, signed = openssh_signature(tmp_path, "ecdsa", ["-b", "256"], b"data")
    _, pos = read_string(signature, 0)
    relabelled = pack_string(b"ecdsa-sha2-nistp384") + signature[pos:]
    with pytest.raises(SignatureRefused, match="does not fit a ecdsa-sha2-nistp256 key"):
        verify_line(line, relabelled, signed)
    with pytest.raises(SignatureRefused, match="key type ssh-dss is not accepted"):
        check_algorithm("ssh-dss", pack_string(b"ssh-dss") + pack_string(b"x"))


def test_short_strings_are_value_errors():
    assert read_string(pack_string(b"abc") + b"rest", 0) == (b"abc", 7)
    for short in (b"", b"\x00\x00\x00", b"\x00\x00\x00\x05abcd"):
        with pytest.raises(ValueError, match="short ssh string"):
            read_string(short, 0)


@settings(max_examples=300, deadline=None)
@given(public=st.binary(max_size=80), signature=st.binary(max_size=120), data=st.binary(max_size=16))
def test_any_bytes_give_a_refusal_never_another_exception(public, signature, data):
    with pytest.raises(SignatureRefused):
        verify(public, signature, data)
