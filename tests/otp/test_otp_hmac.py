"""The OpenSSL-free HMAC agrees with the standard library."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given, settings, strategies as st

from otpme_auth.otp._hmac import compare_digest, hash_digest, hmac_digest, hmac_function


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.binary(max_size=300), st.sampled_from(["sha1", "sha256", "sha512"]))
def test_hmac_matches_stdlib(key, msg, name):
    assert hmac_digest(key, msg, name) == hmac.digest(key, msg, name)
    mac = hmac_function(key, name)
    assert mac(msg) == mac(msg) == hmac.new(key, msg, name).digest()


def test_rfc2202_and_rfc4231_samples():
    assert hmac_digest(b"\x0b" * 20, b"Hi There", "sha1").hex() == "b617318655057264e28bc0b6fb378c8ef146be00"
    assert hmac_digest(b"Jefe", b"what do ya want for nothing?", "sha256").hex() == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    assert hmac_digest(b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First",
                       "sha512").hex().startswith("80b24263c7c1a3ebb71493c1dd7be8b4")


def test_hash_and_compare():
    assert hash_digest("sha1", b"1234") == hashlib.sha1(b"1234").digest()
    assert compare_digest(b"a", b"a") and not compare_digest(b"a", b"b")
