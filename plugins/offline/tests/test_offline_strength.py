"""The password-strength score: a table of known answers, and stated properties."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otpme_auth_offline.strength import CAP_REACH, COMMON, LIMIT, Policy, is_common, score

# (password, lowest acceptable score, highest acceptable score): bands, so that
# small tuning of the weights does not churn the table, but the order holds.
TABLE = [
    ("", 0, 0),
    ("a", 0, 0),
    ("password", 0, 0),
    ("Password1!", 0, 0),          # common + capital + trailing digits/symbols
    ("P@ssw0rd", 0, 0),            # leet-speak
    ("iloveyou2024", 0, 0),
    ("123456789", 0, 0),
    ("qwertyuiop", 0, 0),
    ("hunter2", 0, 0),
    ("aaaaaaaaaaaaaaaa", 0, 0),    # one character repeated
    ("abcdefghijklmnop", 0, 1),    # a sequence
    ("abcdabcdabcdabcd", 0, 2),    # a repeated chunk
    ("monkey123456", 0, 2),
    ("Xk9#mQ2", 3, 3),             # strong characters but shorter than min_length 8
    ("xkqmvtrp", 3, 3),            # 8 random lower-case letters
    ("summer2023!", 3, 5),
    ("xkqmvtrplwzn", 5, 5),        # 12 random lower-case
    ("Tr0ub4dor&3", 6, 8),
    ("k8#Tq2!mZp4@", 7, 7),        # 12 random, four classes
    ("k8#Tq2!mZp4@Lw9^", 10, 10),  # 16 random, four classes
    ("correct horse battery staple", 9, 10),
]


@pytest.mark.parametrize("password, low, high", TABLE)
def test_known_scores(password, low, high):
    assert low <= score(password) <= high


def test_order_of_the_table_holds():
    weak, medium, strong = score("monkey123456"), score("xkqmvtrplwzn"), score("k8#Tq2!mZp4@Lw9^")
    assert weak < medium < strong


def test_common_list():
    assert len(COMMON) >= 150
    assert all(is_common(w) for w in ("password", "PASSWORD", "Passw0rd", "letmein!!", "dragon12"))
    assert not is_common("dragonfly-over-the-lake")


def test_policy_min_length_and_server_data():
    pol = Policy.from_server({"name": "strict", "type": "password_strength", "min_length": 20,
                              "min_score": 6, "dictionaries": ["common-passwords", "english"]})
    assert (pol.name, pol.min_length, pol.min_score) == ("strict", 20, 6)
    assert pol.score("k8#Tq2!mZp4@Lw9^") == 3      # 16 < 20: capped
    assert not pol.acceptable(3) and pol.acceptable(6)
    assert Policy.from_server(None).min_length == 8
    bad = Policy.from_server({"min_length": "x", "min_score": 99, "name": 5})
    assert (bad.name, bad.min_length, bad.min_score) == ("password_strength", 8, 0)


def test_type_checked():
    with pytest.raises(TypeError):
        score(b"bytes")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_never_raises_and_in_range(password):
    result = score(password)
    assert isinstance(result, int) and 0 <= result <= 10
    assert score(password) == result                 # deterministic


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40), st.text(min_size=1, max_size=20))
def test_appending_never_lowers_the_score_unless_it_becomes_common(password, tail):
    longer = password + tail
    assert score(longer) >= score(password) or is_common(longer)


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=CAP_REACH + 1, max_size=60), st.text(min_size=1, max_size=20))
def test_appending_to_a_long_password_never_lowers_the_score(password, tail):
    assert score(password + tail) >= score(password)


@settings(max_examples=50, deadline=None)
@given(st.characters(), st.integers(min_value=1, max_value=2000))
def test_one_repeated_character_is_weak_at_any_length(char, n):
    assert score(char * n) <= 1


def test_long_input_is_bounded():
    assert score("x" * 10 ** 6) == 0
    assert score("k8#Tq2!mZp4@Lw9^" * 1000) == score(("k8#Tq2!mZp4@Lw9^" * 1000)[:LIMIT])
