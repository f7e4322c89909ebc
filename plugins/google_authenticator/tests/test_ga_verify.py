"""gaverify against the peer's own unit test (tests/pam_google_authenticator_unittest.c).

The peer's test drives pam_sm_authenticate with a fake clock over one secret file,
in sequence; here a small ``Login`` helper plays pam_sm_authenticate over our pure
functions (rate limit, then the code), carrying the file state from call to call
exactly as the peer's file would carry it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from otpme_auth_google_authenticator import gaverify  # noqa: E402
from otpme_auth_google_authenticator.gaverify import (  # noqa: E402
    compute_code, rate_limit_check, record_login, verify, within_grace_period)
from otpme_auth_google_authenticator.secretfile import SecretFile  # noqa: E402

SECRET = "2SH3V3GDW7ZNMGYE"
PW = "0123456789"


class Login:
    """The peer's pam_sm_authenticate flow over a file held in memory."""

    def __init__(self, text, **options):
        self.file = SecretFile.parse(text)
        self.options = options
        self.prompts = 0

    @property
    def key(self):
        return self.file.secret

    def append(self, text):
        self.file = SecretFile.parse(self.file.text + text)

    def code(self, counter):
        return compute_code(self.key, counter)

    def __call__(self, response, now, *, mode="prompt"):
        """mode: prompt | forward_pass | use_first_pass | try_first_pass_combined."""
        allowed, state = rate_limit_check(self.file, now)
        if state is not None:
            self.file = state
        if not allowed:
            return False
        kwargs = dict(noskewadj=self.options.get("noskewadj", False),
                      no_increment_hotp=self.options.get("no_increment_hotp", False))
        if mode == "prompt":
            self.prompts += 1
            result = verify(self.file, response, now, **kwargs)
        elif mode == "forward_pass":
            self.prompts += 1
            result = verify(self.file, PW + response, now, allow_prefix=True, **kwargs)
            assert not result.ok or result.password == PW
        elif mode == "use_first_pass":
            result = verify(self.file, PW + response, now, allow_prefix=True, **kwargs)
        else:  # try_first_pass with the code appended to the system password
            first = verify(self.file, PW + response, now, allow_prefix=True, **kwargs)
            result = first
            if not first.final:
                self.prompts += 1  # the peer then prompts; the user enters the same thing
                result = verify(self.file, PW + response, now, hotp_failed_before=first.hotp_failed,
                                **kwargs)
        if result.new_state is not None:
            self.file = result.new_state
        return result.ok


MODES = ["prompt", "forward_pass", "use_first_pass", "try_first_pass_combined"]


@pytest.fixture(params=MODES)
def mode(request):
    return request.param


def test_peer_unittest_totp_sequence(mode):
    login = Login(SECRET + '\n" TOTP_AUTH')
    t = 10000 * 30
    assert not login("123456", t, mode=mode)
    if mode == "prompt":
        for wrong_length in ("50548", "0050548", "00050548"):
            assert not login(wrong_length, t, mode=mode)
    assert not login("", t, mode=mode)
    assert login("050548", t, mode=mode)

    # STEP_SIZE 60: the same code is the one for step 10000 of 60 s.
    login.append('\n" STEP_SIZE 60\n')
    for tm, ok in ((9998, False), (9999, True), (10001, True), (10002, False), (10000, True)):
        assert login("050548", tm * 60, mode=mode) is ok, tm

    # Default window (3) with 30 s steps, then WINDOW_SIZE 6.
    login.file = SecretFile.parse(SECRET + '\n" TOTP_AUTH')
    for tm, ok in ((9998, False), (9999, True), (10001, True), (10002, False), (10000, True)):
        assert login("050548", tm * 30, mode=mode) is ok, tm
    login.append('\n" WINDOW_SIZE 6\n')
    for tm, ok in ((9996, False), (9997, True), (10002, True), (10003, False), (10000, True)):
        assert login("050548", tm * 30, mode=mode) is ok, tm

    # DISALLOW_REUSE
    assert login("050548", t, mode=mode)
    login.append('" DISALLOW_REUSE\n')
    assert login("050548", t, mode=mode)
    assert not login("050548", t, mode=mode)
    for i in range(10001, 10008):
        assert login(login.code(i), i * 30, mode=mode)
    assert '" DISALLOW_REUSE 10002 10003 10004 10005 10006 10007\n' in login.file.text

    # RATE_LIMIT 4 per 120 s
    login.append('" RATE_LIMIT 4 120\n')
    for tm, ok in ((20000, True), (20001, True), (20002, True), (20003, True), (20004, False),
                   (20006, True)):
        assert login(login.code(tm), tm * 30, mode=mode) is ok, tm
    assert '" RATE_LIMIT 4 120 600060 600090 600120 600180\n' in login.file.text

    # A trailing space in RATE_LIMIT is a format error: refused before any prompt.
    good = login.file
    login.file = SecretFile.parse(good.text.replace("600180\n", "600180 \n"))
    prompts = login.prompts
    assert not login("050548", t, mode=mode)
    assert login.prompts == prompts
    login.file = good

    # TIME_SKEW learned from three consecutive skewed codes.
    for i in range(4):
        assert login(login.code(11000 + i), (12000 + i) * 30, mode=mode) is (i >= 2), i
    assert login.file.time_skew == -1000
    assert login.file.get("RESETTING_TIME_SKEW") == ""
    login.options["noskewadj"] = True
    assert not login(login.code(11010), 12020 * 30, mode=mode)
    login.options["noskewadj"] = False

    # Scratch codes are single use.
    assert not login("12345678", t, mode=mode)
    login.append("12345678\n")
    assert login("12345678", t, mode=mode)
    assert not login("12345678", t, mode=mode)
    assert "12345678" not in login.file.text


def test_peer_unittest_hotp_sequence(mode):
    login = Login(SECRET + '\n" HOTP_COUNTER 1\n')
    assert login("293240", 10000 * 30, mode=mode)
    assert login.file.hotp_counter == 2
    assert not login("293240", 10000 * 30, mode=mode)  # the same code again
    assert login.file.hotp_counter == 3
    assert login("932068", 10000 * 30, mode=mode)  # a future code within the window of 3
    assert login.file.hotp_counter == 6


def test_hotp_counter_kept_with_no_increment_hotp():
    login = Login(SECRET + '\n" HOTP_COUNTER 1\n', no_increment_hotp=True)
    assert not login("000000", 0)
    assert login.file.hotp_counter == 1
    assert login("293240", 0)
    assert login.file.hotp_counter == 2


def test_hotp_scratch_after_failed_code_still_advances_counter():
    state = SecretFile.parse(SECRET + '\n" HOTP_COUNTER 1\n12345678\n')
    first = verify(state, PW + "000000", 0, allow_prefix=True)  # PAM_AUTHTOK under try_first_pass
    assert not first.ok and not first.final and first.hotp_failed
    second = verify(state, "12345678", 0, hotp_failed_before=first.hotp_failed)
    assert second.ok and second.reason == "scratch"
    assert second.new_state.text == SECRET + '\n" HOTP_COUNTER 2\n'


def test_hotp_window_limits():
    key = SecretFile.parse(SECRET).secret
    state = SecretFile.parse(SECRET + '\n" HOTP_COUNTER 10\n" WINDOW_SIZE 2\n')
    assert verify(state, compute_code(key, 11), 0).ok
    result = verify(state, compute_code(key, 12), 0)
    assert not result.ok and result.new_state.hotp_counter == 11
    assert verify(state, compute_code(key, 9), 0).reason == gaverify.NO_MATCH


def test_totp_is_not_used_in_hotp_mode_nor_without_totp_auth():
    key = SecretFile.parse(SECRET).secret
    code = compute_code(key, 10000)
    assert not verify(SecretFile.parse(SECRET + '\n" TOTP_AUTH\n" HOTP_COUNTER 5\n'), code, 300000).ok
    assert not verify(SecretFile.parse(SECRET + "\n"), code, 300000).ok
    # HOTP_COUNTER 0 means "not HOTP": TOTP applies.
    assert verify(SecretFile.parse(SECRET + '\n" TOTP_AUTH\n" HOTP_COUNTER 0\n'), code, 300000).ok


def test_skew_learning_details():
    state = SecretFile.parse(SECRET + '\n" TOTP_AUTH\n')
    key = state.secret
    r1 = verify(state, compute_code(key, 11000), 12000 * 30)
    assert (r1.ok, r1.reason) == (False, gaverify.SKEW_LEARNING)
    assert r1.new_state.text == SECRET + '\n" RESETTING_TIME_SKEW 12000-1000\n" TOTP_AUTH\n'
    # The identical code again teaches nothing and changes nothing.
    r2 = verify(r1.new_state, compute_code(key, 11000), 12000 * 30)
    assert (r2.ok, r2.new_state, r2.reason) == (False, None, gaverify.SKEW_REPEAT)
    # A gap of more than two steps does not establish a skew.
    r3 = verify(r1.new_state, compute_code(key, 11001), 12001 * 30)
    r4 = verify(r3.new_state, compute_code(key, 11005), 12005 * 30)
    assert not r4.ok and r4.new_state.resetting_time_skew == ((12000, -1000), (12001, -1000), (12005, -1000))
    # Positive skews are written with a sign.
    r5 = verify(state, compute_code(key, 12100), 12000 * 30)
    assert r5.new_state.get("RESETTING_TIME_SKEW") == "12000+100"
    # Beyond 1500 steps nothing is learned.
    assert verify(state, compute_code(key, 12000 + 1500), 12000 * 30).reason == gaverify.NO_MATCH
    assert verify(state, compute_code(key, 11000), 12000 * 30, noskewadj=True).new_state is None


def test_bad_config_fails_closed():
    key = SecretFile.parse(SECRET).secret
    code = compute_code(key, 10000)
    for extra in ('" WINDOW_SIZE 0', '" STEP_SIZE 99', '" DISALLOW_REUSE x'):
        result = verify(SecretFile.parse(f'{SECRET}\n" TOTP_AUTH\n{extra}\n'), code, 300000)
        assert (result.ok, result.reason, result.final) == (False, gaverify.BAD_CONFIG, True)
    # A clock before the first step is refused too (the peer treats step 0 as an error).
    assert verify(SecretFile.parse(f'{SECRET}\n" TOTP_AUTH\n'), compute_code(key, 0), 10).reason == gaverify.BAD_CONFIG


def test_prefix_handling():
    state = SecretFile.parse(SECRET + '\n" TOTP_AUTH\n12345678\n')
    code = compute_code(state.secret, 10000)
    assert not verify(state, "pw" + code, 300000).ok
    ok = verify(state, "pw" + code, 300000, allow_prefix=True)
    assert ok.ok and ok.password == "pw" and "pw" not in repr(ok)
    scratch = verify(state, "secret12345678", 300000, allow_prefix=True)
    assert scratch.ok and scratch.reason == "scratch" and scratch.password == "secret"
    assert verify(state, " " + code, 300000).reason == gaverify.BAD_FORMAT
    assert verify(state, "０５０５４８", 300000).reason == gaverify.BAD_FORMAT  # full-width digits
    assert verify(state, None, 300000).reason == gaverify.BAD_FORMAT


def test_rate_limit_prunes_and_ignores_future_timestamps():
    state = SecretFile.parse(SECRET + '\n" RATE_LIMIT 2 60 100 150 190 999999\n')
    allowed, new = rate_limit_check(state, 200)
    assert not allowed and new.get("RATE_LIMIT") == "2 60 190 200"
    allowed, new = rate_limit_check(new, 300)
    assert allowed and new.get("RATE_LIMIT") == "2 60 300"
    assert rate_limit_check(SecretFile.parse(SECRET + "\n"), 5) == (True, None)
    assert rate_limit_check(SecretFile.parse(SECRET + '\n" RATE_LIMIT 0 60\n'), 5) == (False, None)


def test_grace_period_state():
    state = SecretFile.parse(SECRET + '\n" TOTP_AUTH\n')
    assert not within_grace_period(state, "192.0.2.7", 1000, 3600)
    s1 = record_login(state, "192.0.2.7", 1000)
    assert s1.text == SECRET + '\n" LAST0 192.0.2.7 1000\n" TOTP_AUTH\n'
    assert within_grace_period(s1, "192.0.2.7", 4599, 3600)
    assert not within_grace_period(s1, "192.0.2.7", 4600, 3600)
    assert not within_grace_period(s1, "198.51.100.1", 1001, 3600)
    assert not within_grace_period(s1, None, 1001, 3600)
    assert record_login(s1, None, 5) is None
    # Same host: same slot, new time.  Other hosts: the next free slots, then the oldest.
    s2 = record_login(s1, "192.0.2.7", 2000)
    assert s2.get("LAST0") == "192.0.2.7 2000" and s2.get("LAST1") is None
    s = s2
    for i in range(1, 10):
        s = record_login(s, f"h{i}", 2000 + i)
    assert [slot for slot, _, _ in s.last_logins] == list(range(10))
    s = record_login(s, "newhost", 3000)
    assert s.get("LAST0") == "newhost 3000"


@pytest.mark.skipif(shutil.which("oathtool") is None, reason="needs oathtool")
@pytest.mark.parametrize("now", [59, 1111111109, 1234567890, 2000000000, 1700000015])
def test_codes_from_oathtool_are_accepted(now):
    state = SecretFile.parse(SECRET + '\n" TOTP_AUTH\n" DISALLOW_REUSE\n')
    code = subprocess.run(["oathtool", "--totp", "-b", f"--now=@{now}", SECRET],
                          check=True, capture_output=True, text=True).stdout.strip()
    result = verify(state, code, now)
    assert result.ok and result.reason == "totp"
    assert not verify(result.new_state, code, now).ok  # reuse refused


@pytest.mark.skipif(shutil.which("oathtool") is None, reason="needs oathtool")
def test_hotp_codes_from_oathtool_are_accepted():
    state = SecretFile.parse(SECRET + '\n" HOTP_COUNTER 7\n')
    code = subprocess.run(["oathtool", "--hotp", "-b", "-c", "8", SECRET],
                          check=True, capture_output=True, text=True).stdout.strip()
    result = verify(state, code, 0)
    assert result.ok and result.new_state.hotp_counter == 9


_FILES = st.lists(st.sampled_from([
    '" TOTP_AUTH', '" HOTP_COUNTER 3', '" WINDOW_SIZE 5', '" WINDOW_SIZE 0', '" STEP_SIZE 60',
    '" DISALLOW_REUSE', '" DISALLOW_REUSE 10000 x', '" RATE_LIMIT 3 30', '" RATE_LIMIT 3 30 299990',
    '" TIME_SKEW -2', '" RESETTING_TIME_SKEW 9999+1 10000+1', '" LAST0 ::1 299000', "12345678", "junk",
]), max_size=8)


@settings(max_examples=200, deadline=None)
@given(_FILES, st.text(alphabet="0123456789 x", max_size=12), st.integers(0, 2**33),
       st.booleans(), st.booleans())
def test_fuzz_login_never_raises(lines, response, now, noskewadj, no_increment):
    state = SecretFile.parse(SECRET + "\n" + "\n".join(lines) + "\n")
    allowed, new = rate_limit_check(state, now)
    state = new or state
    within_grace_period(state, "::1", now, 3600)
    record_login(state, "::1", now)
    result = verify(state, response, now, noskewadj=noskewadj, no_increment_hotp=no_increment)
    assert isinstance(result.ok, bool)
    if result.new_state is not None:
        assert SecretFile.parse(result.new_state.serialize()) == result.new_state


# -- differential tests against the real pam_google_authenticator.so ---------------------

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "peer"))
from peer_helper import peer_available, run_peer  # noqa: E402

needs_peer = pytest.mark.skipif(not peer_available(),
                                reason="needs root, pamtester, libpam-wrapper, libfaketime and the peer module")


def our_login(data, response, now, *, noskewadj=False, no_increment_hotp=False, grace_period=0,
              rhost=None, persist_grace_alone=False):
    """The peer's pam_sm_authenticate order over our functions: (ok, file after, prompted).

    ``persist_grace_alone=False`` reproduces the peer, which writes a LAST line only
    when the same login changed something else too.
    """
    state = SecretFile.parse(data)
    allowed, early = rate_limit_check(state, now)
    state = early or state
    if within_grace_period(state, rhost, now, grace_period):
        return True, data, False
    if not allowed:
        return False, (early.serialize() if early else data), False
    result = verify(state, response, now, noskewadj=noskewadj, no_increment_hotp=no_increment_hotp)
    new = result.new_state
    if result.ok and grace_period:
        recorded = record_login(new or state, rhost, now)
        if recorded is not None and (new is not None or early is not None or persist_grace_alone):
            new = recorded
    final = new or early
    return result.ok, (final.serialize() if final is not None else data), True


def _peer_options(noskewadj, no_increment_hotp, grace_period):
    options = []
    if noskewadj:
        options.append("noskewadj")
    if no_increment_hotp:
        options.append("no_increment_hotp")
    if grace_period:
        options.append(f"grace_period={grace_period}")
    return options


@pytest.mark.pam
@needs_peer
def test_peer_agrees_on_the_unittest_sequence(tmp_path):
    key = SecretFile.parse(SECRET).secret
    data = (SECRET + '\n" TOTP_AUTH\n" DISALLOW_REUSE\n" RATE_LIMIT 3 90\n12345678\n').encode()
    steps = [("050548", 300000), ("050548", 300000), (compute_code(key, 10001), 300030),
             ("123456", 300031), ("12345678", 300032), ("12345678", 300200),
             (compute_code(key, 9000), 300300), (compute_code(key, 9001), 300330),
             (compute_code(key, 9002), 300360), (compute_code(key, 9003), 300390), ("", 300400)]
    for response, now in steps:
        ours = our_login(data, response, now)
        theirs = run_peer(tmp_path, data, response, now)
        assert ours == theirs, (response, now)
        data = theirs[1]


@pytest.mark.pam
@needs_peer
def test_peer_agrees_on_hotp(tmp_path):
    key = SecretFile.parse(SECRET).secret
    data = (SECRET + '\n" HOTP_COUNTER 1\n" WINDOW_SIZE 4\n87654321\n').encode()
    for response in ("293240", "293240", compute_code(key, 5), "000000", "87654321",
                     compute_code(key, 9), compute_code(key, 20)):
        for options in ({}, {"no_increment_hotp": True}):
            ours = our_login(data, response, 1700000000, **options)
            theirs = run_peer(tmp_path, data, response, 1700000000,
                              _peer_options(False, options.get("no_increment_hotp"), 0))
            assert ours == theirs, (response, options)
        data = theirs[1]


@pytest.mark.pam
@needs_peer
def test_peer_agrees_on_grace_period(tmp_path):
    key = SecretFile.parse(SECRET).secret
    base = 1700000000
    data = (SECRET + '\n" TOTP_AUTH\n" DISALLOW_REUSE\n" RATE_LIMIT 1 30\n').encode()
    steps = [(compute_code(key, base // 30), base, "192.0.2.1"), ("", base + 10, "192.0.2.1"),
             ("", base + 11, "192.0.2.2"), ("", base + 61, "192.0.2.1"),
             (compute_code(key, (base + 100) // 30), base + 100, "192.0.2.2")]
    for response, now, rhost in steps:
        ours = our_login(data, response, now, grace_period=60, rhost=rhost)
        theirs = run_peer(tmp_path, data, response, now, ["grace_period=60"], rhost=rhost)
        assert ours == theirs, (response, now, rhost)
        data = theirs[1]


_PEER_FILES = st.sampled_from([
    '" TOTP_AUTH\n', '" TOTP_AUTH\n" DISALLOW_REUSE\n', '" TOTP_AUTH\n" WINDOW_SIZE 5\n" STEP_SIZE 60\n',
    '" RATE_LIMIT 2 60\n" TOTP_AUTH\n" DISALLOW_REUSE\n12345678\n',
    '" TOTP_AUTH\n" TIME_SKEW 3\n" RESETTING_TIME_SKEW 56666665+10 56666666+10\n',
    '" HOTP_COUNTER 4\n" WINDOW_SIZE 3\n12345678\n', '" HOTP_COUNTER 4\r\n\r\n87654321\r\n',
    '\n" TOTP_AUTH\n# comment\n" WINDOW_SIZE 0\n',
])
_STEP = st.tuples(st.sampled_from(["now", "near", "far", "scratch", "random", "eight", "empty", "junk"]),
                  st.integers(-4, 4), st.integers(0, 120))


@pytest.mark.pam
@needs_peer
@settings(max_examples=int(os.environ.get("OTPME_PEER_EXAMPLES", "40")), deadline=None)
@given(_PEER_FILES, st.lists(_STEP, min_size=1, max_size=8), st.booleans(), st.booleans())
def test_peer_agrees_on_random_sequences(tmp_path_factory, body, steps, noskewadj, no_increment):
    tmp_path = tmp_path_factory.mktemp("peer")
    key = SecretFile.parse(SECRET).secret
    data = (SECRET + "\n" + body).encode()
    now = 1700000000
    for kind, delta, advance in steps:
        now += advance
        state = SecretFile.parse(data)
        step = 60 if "STEP_SIZE 60" in body else 30
        base = state.hotp_counter if state.is_hotp else now // step
        response = {
            "now": compute_code(key, base), "near": compute_code(key, base + delta),
            "far": compute_code(key, base + 40 * delta + 7), "scratch": "12345678",
            "random": "%06d" % (abs(delta * 7919 + advance) % 1000000), "eight": "87654321",
            "empty": "", "junk": "12ab56",
        }[kind]
        ours = our_login(data, response, now, noskewadj=noskewadj, no_increment_hotp=no_increment)
        theirs = run_peer(tmp_path, data, response, now, _peer_options(noskewadj, no_increment, 0))
        assert ours == theirs, (body, kind, delta, now)
        data = theirs[1]


def our_login_modes(data, response, now, *, pass_mode, forward_pass, authtok):
    """The peer's try_first_pass / use_first_pass / forward_pass handling over verify()."""
    state = SecretFile.parse(data)
    allowed, early = rate_limit_check(state, now)
    state = early or state
    if not allowed:
        return False, (early.serialize() if early else data), False
    prompted = False
    result = None
    if pass_mode in ("try_first_pass", "use_first_pass") and authtok is not None:
        result = verify(state, authtok, now, allow_prefix=True)
    if pass_mode != "use_first_pass" and (result is None or not result.final):
        prompted = True
        result = verify(state, response, now, allow_prefix=forward_pass,
                        hotp_failed_before=bool(result and result.hotp_failed))
    new = result.new_state if result is not None else None
    final = new or early
    ok = bool(result and result.ok)
    return ok, (final.serialize() if final is not None else data), prompted


_MODE_FILES = st.sampled_from([
    '" TOTP_AUTH\n" DISALLOW_REUSE\n12345678\n', '" HOTP_COUNTER 3\n12345678\n',
    '" RATE_LIMIT 2 60\n" TOTP_AUTH\n',
])
_ENTRY = st.sampled_from(["code", "pw+code", "scratch", "pw+scratch", "wrong", "pw", "", "skewed"])


@pytest.mark.pam
@needs_peer
@settings(max_examples=int(os.environ.get("OTPME_PEER_EXAMPLES", "40")), deadline=None)
@given(_MODE_FILES, st.sampled_from(["prompt", "try_first_pass", "use_first_pass"]), st.booleans(),
       st.lists(st.tuples(_ENTRY, _ENTRY, st.integers(0, 70)), min_size=1, max_size=5))
def test_peer_agrees_on_pass_modes(tmp_path_factory, body, pass_mode, forward_pass, steps):
    tmp_path = tmp_path_factory.mktemp("modes")
    key = SecretFile.parse(SECRET).secret
    data = (SECRET + "\n" + body).encode()
    now = 1700000000
    options = ([] if pass_mode == "prompt" else [pass_mode]) + (["forward_pass"] if forward_pass else [])
    for authtok_kind, response_kind, advance in steps:
        now += advance
        state = SecretFile.parse(data)
        code = compute_code(key, state.hotp_counter if state.is_hotp else now // 30)

        def make(kind):
            return {"code": code, "pw+code": "hunter2" + code, "scratch": "12345678",
                    "pw+scratch": "pw12345678", "wrong": "999999", "pw": "hunter2", "": "",
                    "skewed": compute_code(key, now // 30 - 50)}[kind]

        authtok = None if pass_mode == "prompt" else make(authtok_kind)
        response = make(response_kind)
        ours = our_login_modes(data, response, now, pass_mode=pass_mode, forward_pass=forward_pass,
                               authtok=authtok)
        theirs = run_peer(tmp_path, data, response, now, options, authtok=authtok)
        assert ours == theirs, (body, pass_mode, forward_pass, authtok_kind, response_kind)
        data = theirs[1]
