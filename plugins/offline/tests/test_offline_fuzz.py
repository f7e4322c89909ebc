"""Hypothesis: the header parser and both option parsers raise only their own errors."""

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from otpme_auth_offline.cache import (HEADER_LEN, MAGIC, V1_HEADER_LEN, CacheCorrupt, Header,
                                      parse)
from otpme_auth_offline.keyfunc import KdfParams, parse_key_func, parse_strength_check

KEYS = ["iterations", "min_mem", "max_mem", "threads", "memory", "", "Iterations"]
VALUES = st.one_of(st.integers(-5, 10 ** 7).map(str), st.text(max_size=6))


@st.composite
def key_func_texts(draw):
    name = draw(st.sampled_from(["Argon2_i", "Argon2_id", "", "argon2_i"]) | st.text(max_size=8))
    items = draw(st.lists(st.tuples(st.sampled_from(KEYS) | st.text(max_size=5),
                                    st.sampled_from([":", "=", "", "::"]), VALUES), max_size=6))
    sep = draw(st.sampled_from([";", "", ";;", ","]))
    return name + sep + ",".join(k + s + v for k, s, v in items)


@st.composite
def strength_texts(draw):
    policy = draw(st.sampled_from(["auto", "password_strength", "", "a b"]) | st.text(max_size=8))
    items = draw(st.lists(st.tuples(st.integers(-2, 12).map(str) | st.text(max_size=3),
                                    st.sampled_from([":", "=", ""]), VALUES), max_size=12))
    sep = draw(st.sampled_from([";", "", ";;"]))
    return policy + sep + ",".join(k + s + v for k, s, v in items)


@settings(max_examples=400, deadline=None)
@given(key_func_texts() | st.text(max_size=60))
def test_key_func_parser_raises_only_value_error(text):
    try:
        result = parse_key_func(text)
    except ValueError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert result.min_mem <= result.max_mem and result.min_mem >= 8 * result.threads


@settings(max_examples=400, deadline=None)
@given(strength_texts() | st.text(max_size=60))
def test_strength_parser_raises_only_value_error(text):
    try:
        result = parse_strength_check(text)
    except ValueError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert result.table and all(0 <= s <= 10 and 1 <= i <= 64 for s, i in result.table.items())


def _valid_file(public=b"", body=b"\0" * 20):
    header = Header(KdfParams("Argon2_i", 1, 8, 1), b"s" * 16, b"n" * 12, 1, 2, 3, 4, 0, public,
                    cache_public=b"p" * 32, wrap_nonce=b"w" * 12, wrapped=b"k" * 48, counter=5,
                    mac=b"m" * 32, ephemeral=b"e" * 32)
    return header.pack() + body


def _valid_v1_file(public=b"", body=b"\0" * 20):
    header = Header(KdfParams("Argon2_i", 1, 8, 1), b"s" * 16, b"n" * 12, 1, 2, 3, 4, 0, public,
                    version=1)
    return header.pack() + body


@settings(max_examples=600, deadline=None)
@given(st.binary(max_size=200) | st.builds(lambda v, p, b: MAGIC + v + p + b,
                                          st.sampled_from([b"\x01", b"\x02"]),
                                          st.binary(min_size=0, max_size=HEADER_LEN),
                                          st.binary(max_size=40)))
def test_header_parser_raises_only_cache_corrupt(data):
    try:
        header, header_bytes, ciphertext = parse(data)
    except CacheCorrupt as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert not header.authenticated and len(ciphertext) >= 16
    assert header_bytes + ciphertext == data


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=8), st.integers(0, 300), st.binary(min_size=1, max_size=4),
       st.booleans())
def test_mutated_valid_headers_parse_or_raise_cache_corrupt(public, pos, patch, v1):
    data = bytearray((_valid_v1_file if v1 else _valid_file)(public))
    pos = pos % len(data)
    data[pos:pos + len(patch)] = patch
    try:
        parse(bytes(data))
    except CacheCorrupt:
        pass


def test_header_round_trip():
    data = _valid_file(b"pub")
    header, header_bytes, ciphertext = parse(data)
    assert header.public == b"pub" and header.params == KdfParams("Argon2_i", 1, 8, 1)
    assert (header.created, header.last_used, header.expires, header.unused_expiry) == (1, 2, 3, 4)
    assert header_bytes == data[:HEADER_LEN + 3]
    assert struct.unpack(">H", header_bytes[36:38]) == (3,)
    assert (header.cache_public, header.wrap_nonce, header.wrapped, header.counter, header.mac,
            header.ephemeral, header.nonce) == (b"p" * 32, b"w" * 12, b"k" * 48, 5, b"m" * 32,
                                                b"e" * 32, b"n" * 12)


def test_header_round_trip_v1():
    data = _valid_v1_file(b"pub")
    header, header_bytes, ciphertext = parse(data)
    assert header.version == 1 and header.public == b"pub"
    assert (header.created, header.last_used, header.expires, header.unused_expiry) == (1, 2, 3, 4)
    assert header_bytes == data[:V1_HEADER_LEN + 3]
