"""The peer benchmark's load generator computes its codes itself: check it on the RFC vectors."""

import hashlib
import importlib.util
import os

import pytest

_PATH = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "peer", "loadgen.py")
_spec = importlib.util.spec_from_file_location("peer_loadgen", _PATH)
loadgen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(loadgen)

SEED = b"12345678901234567890"


@pytest.mark.parametrize("counter,code", list(enumerate(
    ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"])))
def test_hotp_rfc4226_appendix_d(counter, code):
    assert loadgen.hotp(SEED, counter) == code


@pytest.mark.parametrize("now,digest,seed,code", [
    (59, hashlib.sha1, SEED, "94287082"),
    (1111111109, hashlib.sha1, SEED, "07081804"),
    (1111111111, hashlib.sha1, SEED, "14050471"),
    (1234567890, hashlib.sha1, SEED, "89005924"),
    (2000000000, hashlib.sha1, SEED, "69279037"),
    (20000000000, hashlib.sha1, SEED, "65353130"),
    (59, hashlib.sha256, SEED + b"123456789012", "46119246"),
    (59, hashlib.sha512, SEED * 3 + b"1234", "90693936"),
])
def test_totp_rfc6238_appendix_b(now, digest, seed, code):
    assert loadgen.totp(seed, now, digits=8, digest=digest) == code


def test_codes_never_repeat_a_token_step_or_counter():
    tokens = [(f"u{i}", bytes([i]) * 20) for i in range(6)]
    codes = loadgen.Codes(tokens, tokens, "12")
    seen = [codes.next_totp() for _ in range(6)]
    assert [u for u, _ in seen] == [f"u{i}" for i in range(6)]
    assert codes.next_totp() is None  # each TOTP token once
    a, b = codes.hotp_owner(0, 2), codes.hotp_owner(1, 2)
    got = [a() for _ in range(6)] + [b() for _ in range(6)]
    assert len(set(got)) == 12
    assert got[0] == ("u0", "12" + loadgen.hotp(tokens[0][1], 0))
    assert got[3] == ("u0", "12" + loadgen.hotp(tokens[0][1], 1))  # client 0 owns u0, u2, u4
    assert {u for u, _ in got[:6]} == {"u0", "u2", "u4"}
