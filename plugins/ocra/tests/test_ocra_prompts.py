"""pam_ocra prompt templates: %c, %Nc, %u, %l, %% and unknown directives."""

from __future__ import annotations

import os
import sys
import time

import pytest
from hypothesis import given, settings, strategies as st

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from otpme_auth_ocra.prompts import (  # noqa: E402
    DEFAULT_CHALLENGE_PROMPT, DEFAULT_RESPONSE_PROMPT, build_prompt, format_prompt)

NOW = 1500585703  # 2017-07-20T21:21:43Z


@pytest.mark.parametrize("template,expected", [
    ("%c", "123456"),
    ("OCRA Challenge: %c", "OCRA Challenge: 123456"),
    ("%1c", "1 2 3 4 5 6"),
    ("%3c", "123 456"),
    ("%4c", "1234 56"),
    ("%6c", "123456"),
    ("%9c", "123456"),
    ("100%% sure", "100% sure"),
    ("%%c", "%c"),
    ("%x%", "%x%"),
    ("%0c", "%0c"),
    ("%12c", "%12c"),
    ("%5", "%5"),
    ("%", "%"),
    ("", ""),
    ("OTP Response to %c: ", "OTP Response to 123456: "),
])
def test_directives(template, expected):
    assert format_prompt(template, "123456", NOW) == expected


def test_utc_timestamp():
    assert format_prompt("%u", "1", NOW) == "2017-07-20T21:21:43Z UTC"


def test_local_timestamp(monkeypatch):
    monkeypatch.setenv("TZ", "America/Chicago")
    time.tzset()
    try:
        assert format_prompt("%l - Challenge: %3c", "123456", NOW) == \
            "2017-07-20T16:21:43-0500 CDT - Challenge: 123 456"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_defaults_and_build_prompt():
    assert DEFAULT_CHALLENGE_PROMPT == "OCRA Challenge: %4c"
    assert DEFAULT_RESPONSE_PROMPT == "OCRA Response: "
    assert build_prompt(None, None, "12345678", NOW) == "OCRA Challenge: 1234 5678\nOCRA Response: "
    assert build_prompt("%u", "OTP Response to %c: ", "123456", NOW) == \
        "2017-07-20T21:21:43Z UTC\nOTP Response to 123456: "


def test_unrepresentable_time_does_not_raise():
    assert "unavailable" in format_prompt("%u %l", "1", 1e300)


@settings(max_examples=1000, deadline=None)
@given(st.text(), st.text(max_size=70))
def test_fuzz_never_raises(template, challenge):
    result = format_prompt(template, challenge, NOW)
    assert isinstance(result, str)
    if "%" not in template:
        assert result == template


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="%cul123456789x0 ", max_size=30))
def test_fuzz_directive_soup(template):
    format_prompt(template, "ABCDEFGH", NOW)
