"""The OTP HMAC over CPython's built-in digests gives the bytes of the standard hmac module."""

import hashlib
import hmac

from hypothesis import given, settings
from hypothesis import strategies as st

from otpme_auth.otp import _hmac


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.binary(max_size=300), st.sampled_from(["sha1", "sha256", "sha512"]))
def test_same_as_the_standard_library(key, msg, name):
    assert _hmac.hmac_digest(key, msg, name) == hmac.digest(key, msg, name)
    assert _hmac.hmac_function(key, name)(msg) == hmac.new(key, msg, name).digest()
    assert _hmac.hash_digest(name, msg) == hashlib.new(name, msg).digest()


def test_no_openssl_on_import():
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", "import sys, otpme_auth.otp._hmac; "
                          "print('_hashlib' in sys.modules, 'hashlib' in sys.modules)"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
