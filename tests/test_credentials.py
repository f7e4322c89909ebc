"""Core credential handling: first-pass semantics, nullok, prompts, PAM_AUTHTOK, secrets."""

import os
import pickle

import pytest
from otpme_auth import ONE_TIME_CODE, PASSWORD, Secret, allow, deny
from otpme_auth.testing import make_plugin, run_login


def checker(expected="secret", prompt="Password: ", calls=None):
    def collect(ctx):
        ctx.ask_authtok(prompt)

    def verify(ctx):
        if calls is not None:
            calls.append(ctx.credentials[PASSWORD].source)
        if ctx.credentials[PASSWORD].matches(expected):
            return allow()
        return deny("wrong password")
    return {"pw": make_plugin("pw", otpme_auth_collect_credentials=collect,
                              otpme_auth_verify=verify)}


def test_prompts_and_shares_the_password_with_the_next_module():
    result = run_login(checker(), "pw", answers=["secret"])
    assert result.ok and result.prompts == ["Password: "]
    assert result.authtok == "secret"


def test_authtok_prompt_overrides_the_prompt():
    result = run_login(checker(), "pw [authtok_prompt=Your secret token: ]", answers=["secret"])
    assert result.prompts == ["Your secret token: "]


def test_use_first_pass_takes_the_stack_and_never_prompts():
    calls = []
    result = run_login(checker(calls=calls), "pw use_first_pass", authtok="secret")
    assert result.ok and result.prompts == [] and calls == ["stack"]
    result = run_login(checker(), "pw use_first_pass", authtok="wrong")
    assert result.code == "AUTH_ERR" and result.prompts == []


def test_use_first_pass_without_a_password_fails_at_once():
    result = run_login(checker(), "pw use_first_pass", answers=["secret"])
    assert result.code == "AUTH_ERR" and result.prompts == []
    assert any("use_first_pass" in line for line in result.log)


def test_try_first_pass_uses_the_stack_when_right():
    result = run_login(checker(), "pw try_first_pass", authtok="secret")
    assert result.ok and result.prompts == []


def test_try_first_pass_falls_back_to_a_prompt_when_wrong():
    calls = []
    result = run_login(checker(calls=calls), "pw try_first_pass", authtok="stale", answers=["secret"])
    assert result.ok and result.prompts == ["Password: "]
    assert calls == ["stack", "prompt"]
    assert result.authtok == "secret"  # the next module gets what was typed


def test_try_first_pass_prompts_when_stack_is_empty():
    result = run_login(checker(), "pw try_first_pass", answers=["secret"])
    assert result.ok and result.prompts == ["Password: "]


def test_try_first_pass_retries_only_once():
    result = run_login(checker(), "pw try_first_pass", authtok="stale", answers=["wrong"])
    assert result.code == "AUTH_ERR" and len(result.prompts) == 1


def test_without_first_pass_options_the_stack_is_ignored():
    result = run_login(checker(), "pw", authtok="secret", answers=["secret"])
    assert result.prompts == ["Password: "]


def test_empty_password_refused_without_nullok():
    calls = []
    result = run_login(checker(expected="", calls=calls), "pw", answers=[""])
    assert result.code == "AUTH_ERR" and calls == []   # no verifier even asked
    result = run_login(checker(expected=""), "pw nullok", answers=[""])
    assert result.ok


def test_the_application_can_forbid_empty_passwords_despite_nullok():
    calls = []
    result = run_login(checker(expected="", calls=calls), "pw nullok", answers=[""], flags=0x1)
    assert result.code == "AUTH_ERR" and calls == []
    assert any("PAM_DISALLOW_NULL_AUTHTOK" in line for line in result.log)


def test_application_that_cannot_prompt_is_a_conversation_error():
    result = run_login(checker(), "pw", answers=[])
    assert result.code == "CONV_ERR"


def test_no_user_name_is_user_unknown():
    assert run_login(checker(), "pw", user=None).code == "USER_UNKNOWN"
    assert run_login(checker(), "pw", user="").code == "USER_UNKNOWN"


def test_forward_pass_sets_the_forwarded_part():
    def collect(ctx):
        both = ctx.ask_authtok("Password & verification code: ", key=ONE_TIME_CODE, share=False)
        text = both.reveal()
        ctx.credentials[PASSWORD] = Secret(text[:-6], "plugin")
        ctx.credentials[ONE_TIME_CODE] = Secret(text[-6:], "plugin")
        if ctx.core.forward_pass:
            ctx.forward_authtok(ctx.credentials[PASSWORD])

    def verify(ctx):
        return allow() if ctx.credentials[ONE_TIME_CODE].matches("123456") else deny("bad code")
    plugin = make_plugin("ga", otpme_auth_collect_credentials=collect, otpme_auth_verify=verify)
    result = run_login({"ga": plugin}, "ga forward_pass", answers=["hunter2123456"])
    assert result.ok and result.authtok == "hunter2"
    result = run_login({"ga": plugin}, "ga", answers=["hunter2123456"])
    assert result.ok and result.authtok is None  # share=False and no forward_pass


def test_echo_verification_code_is_offered_to_plugins():
    def collect(ctx):
        ctx.ask_secret("Verification code: ", key=ONE_TIME_CODE, echo=ctx.core.echo_verification_code)
    plugin = make_plugin("c", otpme_auth_collect_credentials=collect,
                         otpme_auth_verify=lambda ctx: allow())
    assert run_login({"c": plugin}, "c echo_verification_code",
                     answers=["1"]).transcript == [("prompt_echo_on", "Verification code: ")]
    assert run_login({"c": plugin}, "c", answers=["1"]).transcript == [
        ("prompt_echo_off", "Verification code: ")]


def test_second_key_asked_as_authtok_is_a_plain_prompt():
    def collect(ctx):
        ctx.ask_authtok("Password: ")
        ctx.ask_authtok("Code: ", key=ONE_TIME_CODE)
    plugin = make_plugin("two", otpme_auth_collect_credentials=collect,
                         otpme_auth_verify=lambda ctx: allow())
    result = run_login({"two": plugin}, "two use_first_pass", authtok="pw", answers=["123"])
    assert result.prompts == ["Code: "]  # only the first key comes from the stack


# -- secrets never show -------------------------------------------------------

def test_secret_hides_itself():
    s = Secret("hunter2")
    assert "hunter2" not in repr(s) and "hunter2" not in str(s) and "hunter2" not in "%s" % s
    assert s.matches("hunter2") and not s.matches("hunter3") and s.matches(Secret("hunter2"))
    with pytest.raises(TypeError):
        s == "hunter2"  # noqa: B015
    with pytest.raises(TypeError):
        pickle.dumps(s)
    with pytest.raises(TypeError):
        {s}


def test_no_secret_in_any_log_line_with_debug_and_trace():
    password, code = "correct horse 31337", "424242"

    def collect(ctx):
        ctx.ask_authtok()
        ctx.ask_secret("Code: ", key=ONE_TIME_CODE)

    def verify(ctx):
        ok = ctx.credentials[PASSWORD].matches(password) and ctx.credentials[ONE_TIME_CODE].matches(code)
        return allow("both match") if ok else deny("mismatch")
    plugin = make_plugin("two", otpme_auth_collect_credentials=collect, otpme_auth_verify=verify)
    for answers in ([password, code], [password, "000000"], ["wrong", code]):
        result = run_login({"two": plugin}, "two debug trace", answers=answers)
        assert result.log, "debug produced no lines"
        for line in result.log:
            assert password not in line and code not in line


def test_a_careless_plugin_exception_is_scrubbed():
    def verify(ctx):
        raise ValueError("could not parse %r" % ctx.credentials[PASSWORD].reveal())
    plugin = make_plugin("careless", otpme_auth_collect_credentials=lambda ctx: ctx.ask_authtok(),
                         otpme_auth_verify=verify)
    result = run_login({"careless": plugin}, "careless debug", answers=["p4ssw0rd!"])
    assert result.code == "SERVICE_ERR"
    text = "\n".join(result.log)
    assert "p4ssw0rd!" not in text and "<redacted>" in text and "[careless]" in text


def test_a_codec_error_on_a_secret_names_neither_its_character_nor_its_position():
    def verify(ctx):
        ctx.credentials[PASSWORD].reveal().encode()   # careless: not UTF-8 when typed so
        return allow()
    plugin = make_plugin("careless", otpme_auth_collect_credentials=lambda ctx: ctx.ask_authtok(),
                         otpme_auth_verify=verify)
    result = run_login({"careless": plugin}, "careless", answers=["p4ss\udce9w0rd"])
    assert result.code == "SERVICE_ERR"
    text = "\n".join(result.log)
    assert "UnicodeEncodeError: utf-8 (surrogates not allowed)" in text, text
    assert "udce9" not in text and "position" not in text


def test_a_final_deny_is_not_retried_with_a_prompt():
    def verify(ctx):
        return deny("code already used", final=True)
    plugin = make_plugin("otp", otpme_auth_collect_credentials=lambda ctx: ctx.ask_authtok(),
                         otpme_auth_verify=verify)
    result = run_login({"otp": plugin}, "otp try_first_pass", authtok="123456", answers=["x"])
    assert result.code == "AUTH_ERR" and result.prompts == []


def test_rhost_reaches_plugins():
    seen = []
    plugin = make_plugin("p", otpme_auth_verify=lambda ctx: seen.append(ctx.rhost) or allow())
    result = run_login({"p": plugin}, "p", rhost="198.51.100.7")
    assert result.ok and seen == ["198.51.100.7"]
    assert any("authenticated alice from 198.51.100.7" in line for line in result.log)


def test_log_lines_follow_the_pam_convention():
    result = run_login(checker(), "pw", answers=["secret"], service="sshd")
    assert any(line.startswith("pam_otpme_auth(sshd:auth): authenticated alice") for line in result.log)


def test_the_applications_syslog_identity_is_kept(tmp_path):
    """Inside sshd we must not relabel sshd's own later log lines (pam_syslog's convention).

    A real syslog socket at /dev/log receives what a process logs through our Log and
    then through plain syslog(), as the application would.
    """
    import socket
    import subprocess
    import sys
    if os.path.exists("/dev/log") or os.geteuid() != 0:
        pytest.skip("needs root and no syslog daemon on /dev/log (the test binds it)")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("/dev/log")
    try:
        code = ("import syslog\n"
                "from otpme_auth.log import Log\n"
                "Log('sshd').info('hello from the module')\n"
                "syslog.syslog(syslog.LOG_INFO, 'the application logs on')\n")
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        sock.settimeout(2)
        # Other processes on this machine may log meanwhile: keep the child's lines only.
        lines = []
        while len(lines) < 2:
            line = sock.recv(4096).decode()
            if "[%d]" % proc.pid in line:
                lines.append(line)
    finally:
        sock.close()
        os.unlink("/dev/log")
    app = os.path.basename(sys.executable)[:15]
    assert "%s[" % app in lines[0] and "pam_otpme_auth(sshd:auth): hello" in lines[0]
    assert "%s[" % app in lines[1] and "otpme-auth" not in lines[1]
