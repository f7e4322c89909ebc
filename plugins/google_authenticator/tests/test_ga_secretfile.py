"""The google-authenticator secret file: parsing, the peer's edit rules, round trips."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from otpme_auth_google_authenticator.secretfile import SecretFile, SecretFileError  # noqa: E402

SECRET = "2SH3V3GDW7ZNMGYE"

# Files as google-authenticator(1) writes them (captured from Debian's 20191231 tool).
TOOL_TOTP = (b'CEMR7RY2X7KJ4P3WDIKVEBU26E\n" RATE_LIMIT 3 30\n" WINDOW_SIZE 5\n" STEP_SIZE 60\n'
             b'" DISALLOW_REUSE\n" TOTP_AUTH\n13122781\n')
TOOL_HOTP = b'6YOUX2T27NWLJNP5TLVJEH73BM\n" WINDOW_SIZE 5\n" HOTP_COUNTER 1\n28171656\n48122085\n'


def test_tool_files_round_trip_and_read():
    totp = SecretFile.parse(TOOL_TOTP)
    assert totp.serialize() == TOOL_TOTP
    assert totp.totp_auth and not totp.is_hotp
    assert (totp.rate_limit, totp.window_size, totp.step_size) == ((3, 30, ()), 5, 60)
    assert totp.disallow_reuse == ()
    assert totp.scratch_codes == ("13122781",)
    assert totp.secret_base32 == "CEMR7RY2X7KJ4P3WDIKVEBU26E" and len(totp.secret) == 16
    hotp = SecretFile.parse(TOOL_HOTP)
    assert hotp.serialize() == TOOL_HOTP
    assert hotp.is_hotp and hotp.hotp_counter == 1 and hotp.window_size == 5
    assert hotp.scratch_codes == ("28171656", "48122085")
    assert hotp.disallow_reuse is None and hotp.rate_limit is None
    assert hotp.problems() == []


def test_build_matches_the_tool_layout():
    secret = SecretFile.parse(TOOL_TOTP).secret
    built = SecretFile.build(secret, totp=True, disallow_reuse=True, rate_limit=(3, 30),
                             window_size=5, step_size=60, scratch_codes=["13122781"])
    assert built.serialize() == TOOL_TOTP
    secret = SecretFile.parse(TOOL_HOTP).secret
    built = SecretFile.build(secret, totp=False, window_size=5, scratch_codes=[28171656, 48122085])
    assert built.serialize() == TOOL_HOTP


@pytest.mark.parametrize("kwargs", [
    {"rate_limit": (0, 30)}, {"rate_limit": (3, 3601)}, {"window_size": 0}, {"window_size": 101},
    {"step_size": 61}, {"totp": False, "step_size": 30}, {"totp": False, "disallow_reuse": True},
    {"scratch_codes": ["1234567"]}, {"scratch_codes": ["01234567"]}, {"scratch_codes": ["1234567x"]},
])
def test_build_rejects(kwargs):
    with pytest.raises(SecretFileError):
        SecretFile.build(b"0123456789", **kwargs)


@pytest.mark.skipif(shutil.which("google-authenticator") is None, reason="needs google-authenticator(1)")
@pytest.mark.parametrize("args", [
    ["-t", "-d", "-r", "3", "-R", "30", "-w", "17", "-S", "30", "-e", "5"],
    ["-t", "-D", "-u", "-W", "-e", "0"],
    ["-c", "-u", "-w", "5", "-e", "3"],
])
def test_files_from_the_real_tool(tmp_path, args):
    path = tmp_path / "ga"
    subprocess.run(["google-authenticator", "-f", "-q", "-Q", "none", "-s", str(path), *args],
                   check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    data = path.read_bytes()
    parsed = SecretFile.parse(data)
    assert parsed.serialize() == data
    assert parsed.problems() == []
    rebuilt = SecretFile.build(
        parsed.secret, totp=not parsed.is_hotp, disallow_reuse=parsed.disallow_reuse is not None,
        rate_limit=parsed.rate_limit[:2] if parsed.rate_limit else None,
        window_size=parsed.window_size if parsed.has("WINDOW_SIZE") else None,
        step_size=parsed.step_size if parsed.has("STEP_SIZE") else None,
        scratch_codes=parsed.scratch_codes)
    assert rebuilt == parsed


def test_set_option_rewrites_in_place_and_inserts_after_secret():
    f = SecretFile.parse(TOOL_TOTP)
    g = f.with_option("WINDOW_SIZE", "17")
    assert g.serialize() == TOOL_TOTP.replace(b"WINDOW_SIZE 5", b"WINDOW_SIZE 17")
    h = g.with_option("TIME_SKEW", "-2")
    assert h.serialize().startswith(b'CEMR7RY2X7KJ4P3WDIKVEBU26E\n" TIME_SKEW -2\n" RATE_LIMIT')
    # An empty value keeps the separating space, as the peer writes it.
    assert b'" RESETTING_TIME_SKEW \n' in h.with_option("RESETTING_TIME_SKEW", "").serialize()
    assert h.get("TIME_SKEW") == "-2" and h.time_skew == -2


def test_set_option_removes_duplicates_and_eats_blank_lines():
    f = SecretFile.parse(f'{SECRET}\n" WINDOW_SIZE 5\r\n\n\n" TOTP_AUTH\n" WINDOW_SIZE 9\n12345678\n')
    assert f.window_size == 5  # first occurrence wins
    g = f.with_option("WINDOW_SIZE", "7")
    assert g.text == f'{SECRET}\n" WINDOW_SIZE 7\n" TOTP_AUTH\n12345678\n'


def test_insert_after_blank_lines_following_the_secret():
    f = SecretFile.parse(f"{SECRET}\n\n\n\" TOTP_AUTH")
    assert f.with_option("STEP_SIZE", "60").text == f'{SECRET}\n\n\n" STEP_SIZE 60\n" TOTP_AUTH'


def test_option_name_must_be_followed_by_a_separator():
    f = SecretFile.parse(f'{SECRET}\n" WINDOW_SIZEX 5\n" WINDOW_SIZE\t7\n')
    assert f.get("WINDOW_SIZE") == "7"
    assert f.get("WINDOW_SIZ") is None
    assert f.has("WINDOW_SIZEX")


def test_unknown_lines_are_kept_in_place():
    data = f'{SECRET}\r\n# my phone\r\n" FUTURE_OPTION a b c\r\n" TOTP_AUTH\r\n12345678\r\n'.encode()
    f = SecretFile.parse(data)
    assert f.serialize() == data
    assert f.scratch_codes == ()  # the peer stops looking at the first foreign line
    kinds = [kind for kind, _, _ in f.lines()]
    assert kinds == ["secret", "other", "option", "option", "other"]
    g = f.with_option("TOTP_AUTH", "")
    assert g.serialize() == data.replace(b'" TOTP_AUTH\r\n', b'" TOTP_AUTH \n')


def test_scratch_codes_as_the_peer_reads_them():
    f = SecretFile.parse(f'{SECRET}\n" TOTP_AUTH\n12345678\n\n87654321\r\n" X\n11111111\n123\n22222222\n')
    assert f.scratch_codes == ("12345678", "87654321", "11111111")
    g = f.without_scratch_code("87654321")
    assert g.text == f'{SECRET}\n" TOTP_AUTH\n12345678\n\n" X\n11111111\n123\n22222222\n'
    assert f.without_scratch_code(22222222) is None
    assert f.without_scratch_code("garbage") is None
    last = SecretFile.parse(f"{SECRET}\n99999999")
    assert last.without_scratch_code(99999999).text == f"{SECRET}\n"


def test_typed_views_follow_c_parsing():
    f = SecretFile.parse(f'{SECRET}\n" HOTP_COUNTER 12abc\n" TIME_SKEW  -7x\n" STEP_SIZE 60 \n')
    assert f.hotp_counter == 12 and f.time_skew == -7 and f.step_size == 60
    assert SecretFile.parse(f'{SECRET}\n" HOTP_COUNTER junk\n').hotp_counter == 0


@pytest.mark.parametrize("line,prop", [
    ('" WINDOW_SIZE 0', "window_size"), ('" WINDOW_SIZE 101', "window_size"),
    ('" WINDOW_SIZE 3x', "window_size"), ('" WINDOW_SIZE', "window_size"),
    ('" STEP_SIZE 0', "step_size"), ('" STEP_SIZE 61', "step_size"),
    ('" RATE_LIMIT 0 30', "rate_limit"), ('" RATE_LIMIT 3', "rate_limit"),
    ('" RATE_LIMIT 3 3601', "rate_limit"), ('" RATE_LIMIT 101 30', "rate_limit"),
    ('" RATE_LIMIT 3 30 ', "rate_limit"), ('" RATE_LIMIT 3 30 1x', "rate_limit"),
    ('" DISALLOW_REUSE 1 2x', "disallow_reuse"),
])
def test_values_the_peer_refuses(line, prop):
    f = SecretFile.parse(f"{SECRET}\n{line}\n")
    with pytest.raises(SecretFileError) as info:
        getattr(f, prop)
    assert SECRET not in str(info.value)
    assert f.problems()


def test_rate_limit_and_reuse_lists():
    f = SecretFile.parse(f'{SECRET}\n" RATE_LIMIT 4 120 600060\t600090\n" DISALLOW_REUSE 10002  10003\n')
    assert f.rate_limit == (4, 120, (600060, 600090))
    assert f.disallow_reuse == (10002, 10003)


def test_resetting_and_last_lines():
    f = SecretFile.parse(f'{SECRET}\n" RESETTING_TIME_SKEW 1+2 3-4 5+0 7+1 9x\n'
                         f'" LAST0 ::1 1700000000\n" LAST3 host.example 5\n" LAST4 bad_host 5\n')
    assert f.resetting_time_skew == ((3, -4), (5, 0), (7, 1))
    assert f.last_logins == ((0, "::1", 1700000000), (3, "host.example", 5))


@pytest.mark.parametrize("data", [
    b"", b"\n", b"A" * (64 * 1024 + 1), b"JBSWY3DP\0\n", b"!!!!\n", b"=\n", b'" TOTP_AUTH\n',
    "\u20ac", 5, None,
])
def test_parse_rejects(data):
    with pytest.raises(SecretFileError):
        SecretFile.parse(data)


def test_no_secret_in_repr_or_errors():
    f = SecretFile.parse(TOOL_TOTP)
    assert "CEMR" not in repr(f) and "13122781" not in repr(f)
    assert repr(f) == "<SecretFile totp, 114 bytes>"


def test_equality_and_hash():
    a, b = SecretFile.parse(TOOL_TOTP), SecretFile.parse(TOOL_TOTP.decode())
    assert a == b and hash(a) == hash(b) and a != TOOL_TOTP
    assert SecretFile.parse(a.serialize()) == a


@pytest.mark.parametrize("key,value", [("", "1"), ("A B", "1"), ('A"', "1"), ("A", "1\n2"), ("A", "\u20ac")])
def test_with_option_rejects(key, value):
    with pytest.raises(SecretFileError):
        SecretFile.parse(TOOL_TOTP).with_option(key, value)


_LINES = st.sampled_from([
    '" TOTP_AUTH', '" HOTP_COUNTER 5', '" WINDOW_SIZE 3', '" WINDOW_SIZE 0', '" STEP_SIZE 60',
    '" DISALLOW_REUSE', '" DISALLOW_REUSE 1 2 3', '" RATE_LIMIT 3 30', '" RATE_LIMIT 3 30 5 6',
    '" RATE_LIMIT x', '" TIME_SKEW -3', '" RESETTING_TIME_SKEW 5+1 6+1', '" LAST0 ::1 17',
    "12345678", "87654321", "0", "", "junk", '"', '" ', "\r",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(_LINES, max_size=12), st.sampled_from(["\n", "\r\n", "\n\n"]))
def test_structured_files_round_trip(lines, eol):
    data = (SECRET + eol + eol.join(lines)).encode()
    f = SecretFile.parse(data)
    assert f.serialize() == data
    assert SecretFile.parse(f.serialize()) == f
    _exercise(f)


def _exercise(f):
    for prop in ("totp_auth", "hotp_counter", "time_skew", "resetting_time_skew", "last_logins",
                 "scratch_codes", "lines", "problems"):
        value = getattr(f, prop)
        if callable(value):
            value()
    for prop in ("window_size", "step_size", "rate_limit", "disallow_reuse", "secret"):
        try:
            getattr(f, prop)
        except SecretFileError:
            pass
    g = f.with_option("TIME_SKEW", "1").with_option("RATE_LIMIT", "3 30 1")
    assert g.get("TIME_SKEW") == "1" and g.get("RATE_LIMIT") == "3 30 1"
    assert g.secret_base32 == f.secret_base32
    for code in f.scratch_codes:
        h = f.without_scratch_code(code)
        assert h is not None and h.scratch_codes.count(code) == f.scratch_codes.count(code) - 1


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_bytes_parse_or_clear_error(data):
    try:
        f = SecretFile.parse(data)
    except SecretFileError as exc:
        assert len(data) < 8 or data.decode("latin-1") not in str(exc)
        return
    assert f.serialize() == data
    _exercise(f)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ234567\" \r\n\t-0123456789+_LASTOPWINDHR", max_size=200))
def test_fuzz_option_soup(text):
    try:
        f = SecretFile.parse(SECRET + "\n" + text)
    except SecretFileError:
        return
    assert f.text == SECRET + "\n" + text
    _exercise(f)


@pytest.mark.parametrize("kwargs", [{"rate_limit": ("3", 30)}, {"window_size": 3.5}, {"step_size": True}])
def test_build_rejects_non_integers(kwargs):
    with pytest.raises(SecretFileError):
        SecretFile.build(b"0123456789", **kwargs)
