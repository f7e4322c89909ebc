"""base32 as google-authenticator-libpam reads and writes it."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings, strategies as st

from otpme_auth.otp import OtpError
from otpme_auth.otp.base32 import b32decode, b32encode


def test_peer_unittest_vector():
    # tests/pam_google_authenticator_unittest.c: "Hello world..." including its NUL.
    data = b"Hello world...\0"
    assert b32encode(data) == "JBSWY3DPEB3W64TMMQXC4LQA"
    assert b32decode("JBSWY3DPEB3W64TMMQXC4LQA") == data


def test_peer_unittest_secret():
    assert b32decode("2SH3V3GDW7ZNMGYE") == base64.b32decode("2SH3V3GDW7ZNMGYE")


def test_tolerance_like_the_peer():
    canonical = b32decode("JBSWY3DPEB3W64TM")
    assert b32decode("jbsw y3dp-eb3w\t64tm\r\n") == canonical
    # The peer reads 0, 1 and 8 as O, L and B.
    assert b32decode("0") == b32decode("O") == b""
    assert b32decode("01" * 4) == b32decode("OL" * 4)
    assert b32decode("88888888") == b32decode("BBBBBBBB")
    # Missing padding is fine; leftover bits are dropped.
    assert b32decode("JBSWY3DPEB3W64TMMQXC4LQ") == b"Hello world...\0"[:14]


@pytest.mark.parametrize("text", ["ABC=", "AB!C", "9AAAAAAA", "AAAA\0AAA", "\u00c4BCD"])
def test_rejects_like_the_peer(text):
    with pytest.raises(OtpError) as info:
        b32decode(text)
    assert text not in str(info.value)


def test_padding_on_request():
    assert b32decode("MZXW6===", allow_padding=True) == b"foo"
    assert b32encode(b"foo", padding=True) == "MZXW6==="
    assert b32encode(b"foo") == "MZXW6"


def test_type_errors_are_otp_errors():
    with pytest.raises(OtpError):
        b32decode(5)
    with pytest.raises(OtpError):
        b32encode("text")
    assert b32decode(b"MZXW6") == b"foo"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_roundtrip_and_agrees_with_stdlib(data):
    encoded = b32encode(data)
    assert b32decode(encoded) == data
    assert b32decode(encoded.lower()) == data
    assert b32encode(data, padding=True) == base64.b32encode(data).decode()
    assert b32decode(base64.b32encode(data).decode(), allow_padding=True) == data


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_decode_only_raises_otp_error(text):
    try:
        b32decode(text)
    except OtpError:
        pass
