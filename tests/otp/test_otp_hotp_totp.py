"""RFC 4226 Appendix D and RFC 6238 Appendix B vectors, plus argument checking."""

from __future__ import annotations

import pytest

from otpme_auth.otp import OtpError
from otpme_auth.otp.hotp import codes_equal, hotp, hotp_value, totp, totp_counter, truncate

RFC4226_KEY = b"12345678901234567890"

# (counter, truncated decimal Snum, 6-digit HOTP) from RFC 4226 Appendix D.
RFC4226 = [
    (0, 1284755224, "755224"),
    (1, 1094287082, "287082"),
    (2, 137359152, "359152"),
    (3, 1726969429, "969429"),
    (4, 1640338314, "338314"),
    (5, 868254676, "254676"),
    (6, 1918287922, "287922"),
    (7, 82162583, "162583"),
    (8, 673399871, "399871"),
    (9, 645520489, "520489"),
]


@pytest.mark.parametrize("counter,snum,code", RFC4226)
def test_rfc4226_appendix_d(counter, snum, code):
    assert hotp_value(RFC4226_KEY, counter) == snum
    assert hotp(RFC4226_KEY, counter) == code


def test_rfc4226_intermediate_hmac_truncation():
    # Appendix D lists the HMAC for count 0; truncation of it gives Snum.
    digest = bytes.fromhex("cc93cf18508d94934c64b65d8ba7667fb7cde4b0")
    assert truncate(digest, 6) == "755224"
    assert truncate(digest, 10) == "1284755224"


RFC6238_KEYS = {
    "sha1": b"12345678901234567890",
    "sha256": b"12345678901234567890123456789012",
    "sha512": b"1234567890123456789012345678901234567890123456789012345678901234",
}

# (time, T as hex, {alg: 8-digit TOTP}) from RFC 6238 Appendix B.
RFC6238 = [
    (59, "0000000000000001", "94287082", "46119246", "90693936"),
    (1111111109, "00000000023523EC", "07081804", "68084774", "25091201"),
    (1111111111, "00000000023523ED", "14050471", "67062674", "99943326"),
    (1234567890, "000000000273EF07", "89005924", "91819424", "93441116"),
    (2000000000, "0000000003F940AA", "69279037", "90698825", "38618901"),
    (20000000000, "0000000027BC86AA", "65353130", "77737706", "47863826"),
]


@pytest.mark.parametrize("now,t_hex,sha1,sha256,sha512", RFC6238)
def test_rfc6238_appendix_b(now, t_hex, sha1, sha256, sha512):
    assert totp_counter(now) == int(t_hex, 16)
    for alg, code in (("sha1", sha1), ("sha256", sha256), ("sha512", sha512)):
        assert totp(RFC6238_KEYS[alg], now, digits=8, algorithm=alg) == code
        assert totp(RFC6238_KEYS[alg], float(now) + 0.5, digits=8, algorithm=alg.upper()) == code


def test_totp_step_and_t0():
    key = RFC6238_KEYS["sha1"]
    assert totp(key, 1111111109, step=60) == hotp(key, 1111111109 // 60)
    assert totp(key, 1000 + 59, t0=1000) == hotp(key, 1)
    assert totp(key, 59, digits=6) == "287082"


@pytest.mark.parametrize("kwargs", [
    {"digits": 5}, {"digits": 11}, {"digits": True}, {"algorithm": "md5"},
    {"algorithm": 1},
])
def test_hotp_rejects_bad_arguments(kwargs):
    with pytest.raises(OtpError):
        hotp(RFC4226_KEY, 0, **kwargs)


@pytest.mark.parametrize("key,counter", [(b"", 0), ("text", 0), (b"k", -1), (b"k", 2**64), (b"k", 1.0)])
def test_hotp_rejects_bad_key_or_counter(key, counter):
    with pytest.raises(OtpError):
        hotp(key, counter)


@pytest.mark.parametrize("kwargs", [{"step": 0}, {"step": -30}, {"step": 1.5}, {"t0": 100}])
def test_totp_counter_rejects(kwargs):
    with pytest.raises(OtpError):
        totp_counter(50, **kwargs)


@pytest.mark.parametrize("now", [float("nan"), float("inf"), "59", None])
def test_totp_counter_rejects_bad_time(now):
    with pytest.raises(OtpError):
        totp_counter(now)


def test_counter_max():
    assert len(hotp(RFC4226_KEY, 2**64 - 1)) == 6


def test_codes_equal():
    assert codes_equal("123456", "123456")
    assert not codes_equal("123456", "123457")
    assert not codes_equal("123456", "12345")
    assert not codes_equal("123456", None)
    assert codes_equal(b"\xff", b"\xff")
    assert not codes_equal("\udcff", "x")


def test_errors_do_not_leak_key():
    with pytest.raises(OtpError) as info:
        hotp(b"supersecretkey", 0, digits=3)
    assert "supersecret" not in str(info.value)


def test_match_counter_finds_the_first_counter_in_the_window():
    """The window search shared by the server and the offline cache (RFC 4226 appendix D)."""
    from otpme_auth.otp.hotp import match_counter
    key = b"12345678901234567890"
    assert match_counter(key, "359152", 0, 9) == 2
    assert match_counter(key, "359152", 3, 9) is None  # before the window
    assert match_counter(key, "520489", -5, 9) == 9      # negative start is clamped
    assert match_counter(key, "52048", 0, 9) is None     # wrong length
    assert match_counter(key, "52048x", 0, 9) is None
    assert match_counter(key, "520489", 0, 8) is None    # after the window
