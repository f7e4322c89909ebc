"""The OCRA credential file, response verification, kill PIN, challenges."""

from __future__ import annotations

import hashlib
import os
import random
import sys

import pytest
from hypothesis import given, settings, strategies as st

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from otpme_auth.otp.ocra import ocra  # noqa: E402
from otpme_auth_ocra.credfile import (  # noqa: E402
    OcraCredential, OcraCredentialError, make_challenge, parse, serialize, verify_response)

K20 = bytes.fromhex("3132333435363738393031323334353637383930")
K32 = bytes.fromhex("3132333435363738393031323334353637383930313233343536373839303132")
K64 = K32 + K32
PIN_SHA1 = hashlib.sha1(b"1234").digest()
KILL_SHA1 = hashlib.sha1(b"9999").digest()
T = 0x132D0B6

EXAMPLE = (
    "otpme-ocra 1\n"
    "suite=OCRA-1:HOTP-SHA1-6:C-QN08-PSHA1\n"
    "key=3132333435363738393031323334353637383930\n"
    "counter=0\n"
    "counter_window=5\n"
    "pin_hash=7110eda4d09e062aa5e4a390b0a572ac0d2c0220\n"
    f"kill_pin_hash={KILL_SHA1.hex()}\n"
    "disabled=0\n"
)


def test_example_round_trip():
    cred = parse(EXAMPLE)
    assert cred.suite == "OCRA-1:HOTP-SHA1-6:C-QN08-PSHA1"
    assert cred.key == K20 and cred.counter == 0 and cred.counter_window == 5
    assert cred.pin_hash == PIN_SHA1 and cred.kill_pin_hash == KILL_SHA1 and not cred.disabled
    assert serialize(cred).decode() == EXAMPLE
    assert parse(serialize(cred)) == cred
    assert parse(EXAMPLE.encode()) == cred


def test_minimal_files_and_defaults():
    cred = parse(f"otpme-ocra 1\nsuite=OCRA-1:HOTP-SHA256-8:QA08\nkey={K32.hex()}\n")
    assert cred.counter is None and cred.pin_hash is None and cred.timestamp_offset == 0
    assert serialize(cred).decode() == f"otpme-ocra 1\nsuite=OCRA-1:HOTP-SHA256-8:QA08\nkey={K32.hex()}\ndisabled=0\n"
    t = parse(f"otpme-ocra 1\nsuite=OCRA-1:HOTP-SHA512-8:QN08-T1M\nkey={K64.hex()}\ntimestamp_offset=2\n")
    assert t.timestamp_offset == 2
    assert "timestamp_offset=2\n" in serialize(t).decode()


BAD = [
    ("", "newline"), ("otpme-ocra 1", "newline"), ("otpme-ocra 2\n", "header"),
    ("otpme-ocra 1\nkey=00\n", "suite"),
    (EXAMPLE.replace("counter=0\n", ""), "counter"),
    (EXAMPLE.replace("counter=0", "counter=01"), "counter"),
    (EXAMPLE.replace("counter=0", "counter=-1"), "counter"),
    (EXAMPLE.replace("counter=0", f"counter={2**64}"), "counter"),
    (EXAMPLE.replace("counter=0", "counter=\u0661"), "ASCII"),
    (EXAMPLE.replace("counter_window=5", "counter_window=101"), "counter_window"),
    (EXAMPLE.replace("pin_hash=7110", "pin_hash=7110ee"), "pin_hash"),
    (EXAMPLE.replace("pin_hash=7110eda4", "pin_hash=7110EDA4"), "pin_hash"),
    (EXAMPLE.replace("\npin_hash=7110eda4d09e062aa5e4a390b0a572ac0d2c0220", ""), "pin_hash"),
    (EXAMPLE.replace(KILL_SHA1.hex(), PIN_SHA1.hex()), "kill_pin_hash"),
    (EXAMPLE.replace("disabled=0", "disabled=yes"), "disabled"),
    (EXAMPLE.replace("disabled=0", "disabled= 0"), "whitespace"),
    (EXAMPLE.replace("key=3132333435363738393031323334353637383930", "key=3132"), "key"),
    (EXAMPLE.replace("key=3132", "key=zz"), "key"),
    (EXAMPLE + "disabled=1\n", "duplicate"),
    (EXAMPLE + "colour=blue\n", "unknown"),
    (EXAMPLE + "\n", "name=value"),
    (EXAMPLE + "# comment\n", "name=value"),
    (EXAMPLE.replace("\n", "\r\n"), "header"),
    (EXAMPLE.replace("C-QN08", "QN08"), "counter"),
    (EXAMPLE.replace("-PSHA1", ""), "pin_hash"),
    (f"otpme-ocra 1\nsuite=OCRA-1:HOTP-SHA1-6:QN08\nkey={K20.hex()}\ntimestamp_offset=1\n", "timestamp_offset"),
    (EXAMPLE.replace("suite=OCRA-1:HOTP-SHA1-6", "suite=OCRA-1:HOTP-SHA1-3"), "suite"),
    ("x" * 5000, "large"),
]


@pytest.mark.parametrize("text,word", BAD)
def test_parse_rejects_clearly(text, word):
    with pytest.raises(OcraCredentialError) as info:
        parse(text)
    message = str(info.value)
    assert word.lower() in message.lower()
    for secret in (K20.hex(), PIN_SHA1.hex(), KILL_SHA1.hex()):
        assert secret not in message


def test_repr_hides_secrets():
    cred = parse(EXAMPLE)
    text = repr(cred)
    assert "3132" not in text and "7110" not in text and text == "<OcraCredential OCRA-1:HOTP-SHA1-6:C-QN08-PSHA1, counter=0>"
    with pytest.raises(AttributeError):
        cred.counter = 5


def _response(cred, challenge, counter=None, pin_hash=None, stamp=None):
    return ocra(cred.suite, cred.key, challenge, counter=counter,
                pin_hash=pin_hash if cred.parsed_suite.pin_algorithm else None, timestamp_value=stamp)


def test_counter_moves_only_on_success_and_past_the_match():
    cred = parse(EXAMPLE)
    ok, new = verify_response(cred, "12345678", "000000" if _response(cred, "12345678", 0, PIN_SHA1) != "000000" else "111111", 0)
    assert (ok, new) == (False, None)
    ok, new = verify_response(cred, "12345678", _response(cred, "12345678", 3, PIN_SHA1), 0)
    assert ok and new.counter == 4
    # The same response again is now out of the window's reach (counter moved past it).
    assert verify_response(new, "12345678", _response(cred, "12345678", 3, PIN_SHA1), 0) == (False, None)
    # Window: counter .. counter + 5 inclusive.
    assert verify_response(new, "12345678", _response(cred, "12345678", 9, PIN_SHA1), 0)[1].counter == 10
    assert verify_response(new, "12345678", _response(cred, "12345678", 10, PIN_SHA1), 0) == (False, None)


def test_kill_pin_disables():
    cred = parse(EXAMPLE)
    ok, new = verify_response(cred, "87654321", _response(cred, "87654321", 1, KILL_SHA1), 0)
    assert not ok and new.disabled and new.counter == cred.counter
    assert "disabled=1\n" in serialize(new).decode()
    good = _response(cred, "87654321", 1, PIN_SHA1)
    assert verify_response(new, "87654321", good, 0) == (False, None)
    assert verify_response(cred, "87654321", good, 0)[0]


def test_rfc_vectors_through_credentials():
    # RFC 6287 C.1: OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1, counter 0..9 with Q=12345678.
    cred = OcraCredential("OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1", K32, counter=0, counter_window=9,
                          pin_hash=PIN_SHA1)
    ok, new = verify_response(cred, "12345678", "08522129", 0)
    assert ok and new.counter == 10
    # C.1 time-based, with an offset of two steps either way.
    t = OcraCredential("OCRA-1:HOTP-SHA512-8:QN08-T1M", K64[:64] if False else bytes.fromhex(
        "31323334353637383930313233343536373839303132333435363738393031323334353637383930"
        "313233343536373839303132333435363738393031323334"), timestamp_offset=2)
    assert verify_response(t, "00000000", "95209754", T * 60) == (True, None)
    assert verify_response(t, "00000000", "95209754", (T + 2) * 60 + 59) == (True, None)
    assert verify_response(t, "00000000", "95209754", (T - 2) * 60) == (True, None)
    assert verify_response(t, "00000000", "95209754", (T + 3) * 60) == (False, None)
    # Whitespace around the response is tolerated, other characters are not.
    assert verify_response(t, "00000000", " 95209754\n", T * 60)[0]
    assert not verify_response(t, "00000000", "9520 9754", T * 60)[0]
    assert not verify_response(t, "00000000", None, T * 60)[0]
    assert not verify_response(t, "00000000", "\u0669" * 8, T * 60)[0]


def test_full_hmac_responses_compare_case_insensitively():
    cred = OcraCredential("OCRA-1:HOTP-SHA1-0:QH08", K20)
    full = ocra(cred.suite, K20, "a1b2c3d4")
    assert len(full) == 40
    assert verify_response(cred, "a1b2c3d4", full.upper(), 0) == (True, None)


def test_bad_challenge_is_a_caller_error():
    cred = parse(EXAMPLE)
    with pytest.raises(OcraCredentialError):
        verify_response(cred, "not-numeric", "123456", 0)


@pytest.mark.parametrize("suite,alphabet", [
    ("OCRA-1:HOTP-SHA1-6:QN08", "0123456789"),
    ("OCRA-1:HOTP-SHA1-6:QA10", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"),
    ("OCRA-1:HOTP-SHA1-6:QH64", "0123456789ABCDEF"),
])
def test_make_challenge(suite, alphabet):
    length = int(suite[-2:])
    for _ in range(20):
        challenge = make_challenge(suite)
        assert len(challenge) == length and set(challenge) <= set(alphabet)
    assert make_challenge(suite, random.Random(1).randrange) == make_challenge(suite, random.Random(1).randrange)
    # Every challenge made is accepted by the OCRA computation for that suite.
    ocra(suite, K20, make_challenge(suite))


def test_make_challenge_rejects_bad_suite():
    with pytest.raises(OcraCredentialError):
        make_challenge("OCRA-1:HOTP-SHA1-6:QX08")


@pytest.mark.parametrize("kwargs", [
    {"suite": "nope", "key": K20}, {"suite": "OCRA-1:HOTP-SHA1-6:QN08", "key": b"short"},
    {"suite": "OCRA-1:HOTP-SHA1-6:QN08", "key": K20, "counter": 1},
    {"suite": "OCRA-1:HOTP-SHA1-6:QN08", "key": K20, "counter_window": 1},
    {"suite": "OCRA-1:HOTP-SHA1-6:QN08", "key": K20, "pin_hash": PIN_SHA1},
    {"suite": "OCRA-1:HOTP-SHA1-6:QN08", "key": K20, "disabled": 1},
    {"suite": "OCRA-1:HOTP-SHA1-6:C-QN08", "key": K20, "counter": True},
])
def test_constructor_validates(kwargs):
    suite, key = kwargs.pop("suite"), kwargs.pop("key")
    with pytest.raises(OcraCredentialError):
        OcraCredential(suite, key, **kwargs)


_SUITES = st.sampled_from(["OCRA-1:HOTP-SHA1-6:QN08", "OCRA-1:HOTP-SHA256-8:C-QA10-PSHA256",
                           "OCRA-1:HOTP-SHA512-0:QH16-T30S", "OCRA-1:HOTP-SHA1-4:C-QN04-PSHA1-T1H"])


@settings(max_examples=200, deadline=None)
@given(_SUITES, st.binary(min_size=16, max_size=64), st.integers(0, 2**64 - 1), st.integers(0, 100),
       st.integers(0, 100), st.booleans())
def test_serialize_parse_round_trip(suite, key, counter, window, offset, disabled):
    from otpme_auth.otp.ocra import parse_suite
    s = parse_suite(suite)
    cred = OcraCredential(
        suite, key, counter=counter if s.counter else None, counter_window=window if s.counter else 0,
        timestamp_offset=offset if s.time_step else 0,
        pin_hash=bytes(s.pin_hash_length) if s.pin_algorithm else None,
        kill_pin_hash=b"\1" * s.pin_hash_length if s.pin_algorithm else None, disabled=disabled)
    assert parse(serialize(cred)) == cred


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_parse_only_raises_credential_error(data):
    try:
        parse(data)
    except OcraCredentialError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([
    "suite=OCRA-1:HOTP-SHA1-6:C-QN08-PSHA1", "suite=OCRA-1:HOTP-SHA1-6:QN08", f"key={K20.hex()}",
    "counter=0", "counter=7", "counter_window=3", "timestamp_offset=1", f"pin_hash={PIN_SHA1.hex()}",
    f"kill_pin_hash={KILL_SHA1.hex()}", "disabled=1", "disabled=0", "x=y", "=", "key=",
]), max_size=9), st.text(alphabet="0123456789", min_size=8, max_size=8), st.text(max_size=10))
def test_fuzz_files_and_responses(lines, challenge, response):
    try:
        cred = parse("otpme-ocra 1\n" + "".join(line + "\n" for line in lines))
    except OcraCredentialError:
        return
    assert parse(serialize(cred)) == cred
    ok, new = verify_response(cred, challenge, response, 1_700_000_000)
    assert isinstance(ok, bool) and (new is None or isinstance(new, OcraCredential))


def test_documented_example_is_valid():
    from otpme_auth_ocra import credfile
    doc = credfile.__doc__
    block = doc[doc.index("    otpme-ocra 1"):].split("\n\n")[0]
    example = "\n".join(line[4:] for line in block.splitlines()) + "\n"
    cred = parse(example)
    assert serialize(cred).decode() == example
    assert cred.kill_pin_hash == KILL_SHA1 and cred.pin_hash == PIN_SHA1


def test_default_rng_is_uniform_enough():
    from collections import Counter
    from otpme_auth_ocra.credfile import _randbelow
    for n in (10, 16, 62):
        counts = Counter(_randbelow(n) for _ in range(n * 400))
        assert set(counts) == set(range(n))
        assert max(counts.values()) < 2.2 * min(counts.values())
