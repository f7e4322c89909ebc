"""A prompt without an answer (the user gave up) is logged as that, not as an error (issue 9.5)."""

from otpme_auth import allow, hookimpl


class AskingVerifier:
    @hookimpl
    def otpme_auth_collect_credentials(self, ctx):
        ctx.ask_authtok("Password: ")

    @hookimpl
    def otpme_auth_verify(self, ctx):
        return allow("ok")


def test_no_answer_is_conv_err_logged_at_info(run_login):
    result = run_login({"v": AskingVerifier()}, "v", answers=[])
    assert result.code == "CONV_ERR"
    levels = [level for level, _ in result.log_records]
    assert "error" not in levels, result.log_records
    assert any("no answer to the prompt (the user gave up" in line for line in result.log)
