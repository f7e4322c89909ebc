"""RFC 6287 Appendix C vectors (one-way, mutual, signature) and suite parsing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from otpme_auth.otp import OtpError
from otpme_auth.otp.ocra import format_question, hash_pin, ocra, parse_suite, timestamp

K20 = bytes.fromhex("3132333435363738393031323334353637383930")
K32 = bytes.fromhex("3132333435363738393031323334353637383930313233343536373839303132")
K64 = bytes.fromhex(
    "31323334353637383930313233343536373839303132333435363738393031323334353637383930"
    "313233343536373839303132333435363738393031323334")
PIN = "1234"
PIN_SHA1 = bytes.fromhex("7110eda4d09e062aa5e4a390b0a572ac0d2c0220")
T = 0x132D0B6  # 20107446 minutes: "Mar 25 2008, 12:06:30 GMT"


def q(i):
    return str(i) * 8


# C.1 One-way challenge-response
ONE_WAY_QN08 = ["237653", "243178", "653583", "740991", "608993",
                "388898", "816933", "224598", "750600", "294470"]
ONE_WAY_C_QN08_PSHA1 = ["65347737", "86775851", "78192410", "71565254", "10104329",
                        "65983500", "70069104", "91771096", "75011558", "08522129"]
ONE_WAY_QN08_PSHA1 = ["83238735", "01501458", "17957585", "86776967", "86807031"]
ONE_WAY_SHA512_C_QN08 = ["07016083", "63947962", "70123924", "25341727", "33203315",
                         "34205738", "44343969", "51946085", "20403879", "31409299"]
ONE_WAY_SHA512_QN08_T1M = ["95209754", "55907591", "22048402", "24218844", "36209546"]


@pytest.mark.parametrize("i,expected", list(enumerate(ONE_WAY_QN08)))
def test_c1_sha1_qn08(i, expected):
    assert ocra("OCRA-1:HOTP-SHA1-6:QN08", K20, q(i)) == expected


@pytest.mark.parametrize("c,expected", list(enumerate(ONE_WAY_C_QN08_PSHA1)))
def test_c1_sha256_counter_pin(c, expected):
    suite = "OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1"
    assert ocra(suite, K32, "12345678", counter=c, pin=PIN) == expected
    assert ocra(suite, K32, "12345678", counter=c, pin_hash=PIN_SHA1) == expected


@pytest.mark.parametrize("i,expected", list(enumerate(ONE_WAY_QN08_PSHA1)))
def test_c1_sha256_pin(i, expected):
    assert ocra("OCRA-1:HOTP-SHA256-8:QN08-PSHA1", K32, q(i), pin=PIN) == expected


@pytest.mark.parametrize("i,expected", list(enumerate(ONE_WAY_SHA512_C_QN08)))
def test_c1_sha512_counter(i, expected):
    assert ocra("OCRA-1:HOTP-SHA512-8:C-QN08", K64, q(i), counter=i) == expected


@pytest.mark.parametrize("i,expected", list(enumerate(ONE_WAY_SHA512_QN08_T1M)))
def test_c1_sha512_timestamp(i, expected):
    suite = "OCRA-1:HOTP-SHA512-8:QN08-T1M"
    assert ocra(suite, K64, q(i), timestamp_value=T) == expected
    # The same T derived from a Unix time inside that minute.
    assert ocra(suite, K64, q(i), now=T * 60 + 30) == expected


# C.2 Mutual challenge-response: (server computes on CLI+SRV, client on SRV+CLI)
MUTUAL_SHA256 = [
    ("CLI22220SRV11110", "28247970"), ("CLI22221SRV11111", "01984843"),
    ("CLI22222SRV11112", "65387857"), ("CLI22223SRV11113", "03351211"),
    ("CLI22224SRV11114", "83412541"), ("SRV11110CLI22220", "15510767"),
    ("SRV11111CLI22221", "90175646"), ("SRV11112CLI22222", "33777207"),
    ("SRV11113CLI22223", "95285278"), ("SRV11114CLI22224", "28934924"),
]
MUTUAL_SHA512_SERVER = [
    ("CLI22220SRV11110", "79496648"), ("CLI22221SRV11111", "76831980"),
    ("CLI22222SRV11112", "12250499"), ("CLI22223SRV11113", "90856481"),
    ("CLI22224SRV11114", "12761449"),
]
MUTUAL_SHA512_CLIENT_PIN = [
    ("SRV11110CLI22220", "18806276"), ("SRV11111CLI22221", "70020315"),
    ("SRV11112CLI22222", "01600026"), ("SRV11113CLI22223", "18951020"),
    ("SRV11114CLI22224", "32528969"),
]


@pytest.mark.parametrize("challenge,expected", MUTUAL_SHA256)
def test_c2_mutual_sha256(challenge, expected):
    assert ocra("OCRA-1:HOTP-SHA256-8:QA08", K32, challenge) == expected


@pytest.mark.parametrize("challenge,expected", MUTUAL_SHA512_SERVER)
def test_c2_mutual_sha512_server(challenge, expected):
    assert ocra("OCRA-1:HOTP-SHA512-8:QA08", K64, challenge) == expected


@pytest.mark.parametrize("challenge,expected", MUTUAL_SHA512_CLIENT_PIN)
def test_c2_mutual_sha512_client_pin(challenge, expected):
    assert ocra("OCRA-1:HOTP-SHA512-8:QA08-PSHA1", K64, challenge, pin=PIN) == expected


# C.3 Plain signature
SIGNATURE_SHA256 = [("SIG10000", "53095496"), ("SIG11000", "04110475"),
                    ("SIG12000", "31331128"), ("SIG13000", "76028668"),
                    ("SIG14000", "46554205")]
SIGNATURE_SHA512_T = [("SIG1000000", "77537423"), ("SIG1100000", "31970405"),
                      ("SIG1200000", "10235557"), ("SIG1300000", "95213541"),
                      ("SIG1400000", "65360607")]


@pytest.mark.parametrize("challenge,expected", SIGNATURE_SHA256)
def test_c3_signature_sha256(challenge, expected):
    assert ocra("OCRA-1:HOTP-SHA256-8:QA08", K32, challenge) == expected


@pytest.mark.parametrize("challenge,expected", SIGNATURE_SHA512_T)
def test_c3_signature_sha512_timestamp(challenge, expected):
    assert ocra("OCRA-1:HOTP-SHA512-8:QA10-T1M", K64, challenge, timestamp_value=T) == expected


def test_pin_hash():
    assert hash_pin("OCRA-1:HOTP-SHA1-6:QN08-PSHA1", "1234") == PIN_SHA1
    assert len(hash_pin("OCRA-1:HOTP-SHA1-6:QN08-PSHA512", b"1234")) == 64
    with pytest.raises(OtpError):
        hash_pin("OCRA-1:HOTP-SHA1-6:QN08", "1234")


def test_question_formats():
    # N: the decimal number in hex, padded on the right.
    assert format_question("OCRA-1:HOTP-SHA1-6:QN08", "11111111")[:4] == bytes.fromhex("a98ac700")
    assert format_question("OCRA-1:HOTP-SHA1-6:QN08", "00000000") == bytes(128)
    # H: nibbles kept as given (leading zeros too), odd length padded by a nibble.
    assert format_question("OCRA-1:HOTP-SHA1-6:QH08", "00ABc")[:4] == bytes.fromhex("00abc000")
    # A: ASCII bytes padded with zero bytes.
    assert format_question("OCRA-1:HOTP-SHA1-6:QA08", "SIG10000") == b"SIG10000".ljust(128, b"\0")
    assert len(format_question("OCRA-1:HOTP-SHA1-6:QH64", "f" * 64)) == 128
    assert len(format_question("OCRA-1:HOTP-SHA1-6:QN64", "9" * 64)) == 128


@pytest.mark.parametrize("suite,challenge", [
    ("OCRA-1:HOTP-SHA1-6:QN08", "1234567a"),
    ("OCRA-1:HOTP-SHA1-6:QN08", "\u0661\u0662\u0663\u0664"),  # Arabic-Indic digits
    ("OCRA-1:HOTP-SHA1-6:QH08", "xyzxyzxy"),
    ("OCRA-1:HOTP-SHA1-6:QA08", "caf\u00e9caf\u00e9"),
    ("OCRA-1:HOTP-SHA1-6:QA08", "abc"),
    ("OCRA-1:HOTP-SHA1-6:QA08", "a" * 65),
])
def test_bad_challenges(suite, challenge):
    with pytest.raises(OtpError) as info:
        ocra(suite, K20, challenge)
    assert challenge not in str(info.value)


def test_parse_suite_fields():
    s = parse_suite("OCRA-1:HOTP-SHA512-0:C-QH16-PSHA256-S128-T14H")
    assert (s.algorithm, s.digits, s.counter, s.q_format, s.q_length) == ("sha512", 0, True, "H", 16)
    assert (s.pin_algorithm, s.pin_hash_length, s.session_length, s.time_step) == ("sha256", 32, 128, 14 * 3600)
    s = parse_suite("OCRA-1:HOTP-SHA1-6:QA64-T30S")
    assert (s.counter, s.pin_algorithm, s.session_length, s.time_step) == (False, None, None, 30)
    assert parse_suite("OCRA-1:HOTP-SHA1-4:QN04-T1M").time_step == 60
    assert str(s) == "OCRA-1:HOTP-SHA1-6:QA64-T30S"
    assert s == parse_suite(s.text) and hash(s) == hash(parse_suite(s.text))


@pytest.mark.parametrize("text", [
    "this_is_not_a_suite_string", "OCRA-1::QA08", "OCRA-1:::QA08",
    "OCRA-1:HOTP-SHA1-6:QN08-T01X", "OCRA-1:HOTP-SHA1-6:QN08-T91S", "OCRA-1:HOTP-SHA1-6:QN08-T91H",
    "OCRA-1:HOTP-SHA1-6:QN08-T", "OCRA-1:HOTP-SHA1-6:QN08-T0S", "OCRA-1:HOTP-SHA1-6:QN08-T60M",
    "OCRA-1:HOTP-SHA1-6:QN08-T49H", "OCRA-1:HOTP-SHA1-6:QH08-S028---", "OCRA-1:HOTP-SHA1-6:QX08",
    "OCRA-1:HOTP-SHA1-6:C-", "OCRA-1:HOTP-SHA1-6:C", "OCRA-1:HOTP-SHA1-6:", "OCRA-1:HOTP-SHA1-1:QA08",
    "OCRA-1:HOTP-SHA-6:QN08", "OCRA-1:HOTP-SHA1-a0:QN08", "OCRA-1:HTOP-SHA1-6:QA-08",
    "OCRA-1:HOTP-SHA1-11:QN08", "OCRA-1:HOTP-SHA1-06:QN08", "OCRA-1:HOTP-SHA1-6:QN03",
    "OCRA-1:HOTP-SHA1-6:QN65", "OCRA-1:HOTP-SHA1-6:QN8", "OCRA-1:HOTP-SHA1-6:QN08-PMD5",
    "OCRA-1:HOTP-SHA1-6:QN08-S64", "OCRA-1:HOTP-SHA1-6:QN08-S000", "OCRA-1:HOTP-SHA1-6:QN08-T1M-PSHA1",
    "OCRA-1:HOTP-SHA1-6:QN08-C", "OCRA-2:HOTP-SHA1-6:QN08", "ocra-1:hotp-sha1-6:qn08",
    "OCRA-1:HOTP-SHA1-6:QN08:", "OCRA-1:HOTP-SHA1-6:QN\u0660\u0668", "", 42, None,
])
def test_parse_suite_rejects(text):
    with pytest.raises(OtpError):
        parse_suite(text)


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_parse_suite_only_raises_otp_error(text):
    try:
        parse_suite(text)
    except OtpError:
        pass


_PART = st.sampled_from(["OCRA-1", "HOTP", "SHA1", "SHA256", "SHA512", "6", "0", "10", "C", "QN08",
                         "QA64", "QH04", "PSHA1", "S064", "T1M", "T30S", "T48H", "", "X", "Q", "T"])


@settings(max_examples=500, deadline=None)
@given(st.lists(_PART, max_size=8), st.lists(st.sampled_from([":", "-"]), min_size=8, max_size=8))
def test_parse_suite_structured_fuzz(parts, seps):
    text = "".join(p + s for p, s in zip(parts, seps)).rstrip(":-")
    try:
        suite = parse_suite(text)
    except OtpError:
        return
    # Whatever parses must compute with inputs of its own shape.
    challenge = {"N": "1" * suite.q_length, "A": "a" * suite.q_length, "H": "f" * suite.q_length}[suite.q_format]
    kwargs = {}
    if suite.counter:
        kwargs["counter"] = 1
    if suite.pin_algorithm:
        kwargs["pin"] = "1"
    if suite.session_length:
        kwargs["session"] = b"s"
    if suite.time_step:
        kwargs["now"] = 1_700_000_000
    response = ocra(suite, K20, challenge, **kwargs)
    assert len(response) == (suite.digits or {"sha1": 40, "sha256": 64, "sha512": 128}[suite.algorithm])


@pytest.mark.parametrize("suite,kwargs", [
    ("OCRA-1:HOTP-SHA1-6:C-QN08", {}),
    ("OCRA-1:HOTP-SHA1-6:QN08", {"counter": 1}),
    ("OCRA-1:HOTP-SHA1-6:QN08-PSHA1", {}),
    ("OCRA-1:HOTP-SHA1-6:QN08-PSHA1", {"pin": "1", "pin_hash": PIN_SHA1}),
    ("OCRA-1:HOTP-SHA1-6:QN08-PSHA1", {"pin_hash": b"short"}),
    ("OCRA-1:HOTP-SHA1-6:QN08", {"pin": "1"}),
    ("OCRA-1:HOTP-SHA1-6:QN08-S064", {}),
    ("OCRA-1:HOTP-SHA1-6:QN08-S064", {"session": b"x" * 65}),
    ("OCRA-1:HOTP-SHA1-6:QN08", {"session": b"x"}),
    ("OCRA-1:HOTP-SHA1-6:QN08-T1M", {}),
    ("OCRA-1:HOTP-SHA1-6:QN08-T1M", {"now": 1, "timestamp_value": 1}),
    ("OCRA-1:HOTP-SHA1-6:QN08-T1M", {"timestamp_value": -1}),
    ("OCRA-1:HOTP-SHA1-6:QN08-T1M", {"now": -5}),
    ("OCRA-1:HOTP-SHA1-6:QN08", {"now": 5}),
    ("OCRA-1:HOTP-SHA1-6:C-QN08", {"counter": 2**64}),
])
def test_ocra_rejects_inconsistent_inputs(suite, kwargs):
    with pytest.raises(OtpError):
        ocra(suite, K20, "12345678", **kwargs)


def test_session_is_left_padded_and_digits_zero_is_full_hmac():
    suite = "OCRA-1:HOTP-SHA1-0:QN08-S004"
    assert ocra(suite, K20, "12345678", session=b"\0\0ab") == ocra(suite, K20, "12345678", session=b"ab")
    assert len(ocra(suite, K20, "12345678", session=b"ab")) == 40


def test_timestamp_helper():
    assert timestamp("OCRA-1:HOTP-SHA1-6:QN08-T1M", T * 60 + 59) == T
    assert timestamp("OCRA-1:HOTP-SHA1-6:QN08-T2H", 7200 * 3 + 1) == 3
    with pytest.raises(OtpError):
        timestamp("OCRA-1:HOTP-SHA1-6:QN08", 0)
