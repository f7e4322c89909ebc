"""The account phase's rules (pipeline.check_account), with small plugins."""

import pytest

from otpme_auth import abstain, allow, deny, hookimpl, unavailable


class Answer:
    def __init__(self, answer):
        self.answer = answer

    @hookimpl
    def otpme_auth_check_account(self, ctx):
        return self.answer


def account(run_login, *answers):
    plugins = {"p%d" % i: Answer(a) for i, a in enumerate(answers)}
    return run_login(plugins, " ".join(plugins), function="acct_mgmt")


@pytest.mark.parametrize("answers, code", [
    ((None,), "SUCCESS"),
    ((deny("disabled"),), "PERM_DENIED"),
    ((deny("expired", pam_code="ACCT_EXPIRED"),), "ACCT_EXPIRED"),
    ((deny("who?", pam_code="USER_UNKNOWN"),), "USER_UNKNOWN"),
    ((unavailable("no server"),), "AUTHINFO_UNAVAIL"),
    ((unavailable("no server"), allow("cache valid")), "SUCCESS"),
    ((unavailable("no server"), abstain("no cache")), "USER_UNKNOWN"),
    ((None, abstain("no cache")), "SUCCESS"),
    ((None, allow("cache valid")), "SUCCESS"),
    ((deny("disabled"), allow("cache valid")), "PERM_DENIED"),
    ((allow("cache valid"), deny("disabled")), "PERM_DENIED"),
    ((unavailable("no server"), deny("in DENY_LOGIN_USERS")), "PERM_DENIED"),
])
def test_rules(run_login, answers, code):
    result = account(run_login, *answers)
    assert result.code == code, result.log


def test_refusal_summary_in_the_log(run_login):
    result = run_login({"p": Answer(deny("refused by s1: outside_login_times"))}, "p",
                       function="acct_mgmt", rhost="192.0.2.7")
    assert "account of alice from 192.0.2.7 refused: refused by s1: outside_login_times" in \
        " ".join(result.log)
