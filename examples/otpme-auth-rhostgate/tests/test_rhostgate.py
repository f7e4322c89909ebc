"""Tests of the gate example, written the way a third-party author writes them.

The fixtures come from otpme-auth's plugin kit (``pytest -p otpme_auth.testing.plugin``,
set in this folder's pyproject.toml).
"""

import pytest

import otpme_auth_rhostgate as rhostgate

PLUGINS = {"rhostgate": rhostgate}
LINE = "gate rhost_allow=10.0.0.0/8,2001:db8::/32"


# [docs:tests]
def test_a_host_inside_the_networks_passes_the_gate(otpme_auth_run_login):
    result = otpme_auth_run_login(PLUGINS, LINE, rhost="10.1.2.3")
    result.assert_code("IGNORE")          # a gate never grants: the next module decides
    assert result.prompts == []


def test_a_host_outside_is_refused_before_any_prompt(otpme_auth_run_login):
    result = otpme_auth_run_login(PLUGINS, LINE, rhost="192.0.2.9")
    result.assert_code("AUTH_ERR")
    assert any("192.0.2.9 is not in rhost_allow" in line for line in result.log)


@pytest.mark.parametrize("rhost", ["evil.example.org", "", "10.0.0.1 ; x"])
def test_names_and_missing_hosts_are_refused(otpme_auth_run_login, rhost):
    assert otpme_auth_run_login(PLUGINS, LINE, rhost=rhost or None).code == "AUTH_ERR"


def test_a_bad_network_fails_the_line_closed(otpme_auth_run_login):
    result = otpme_auth_run_login(PLUGINS, "gate rhost_allow=10.0.0.300/8", rhost="10.1.2.3")
    result.assert_code("SERVICE_ERR")
    assert any("'10.0.0.300/8' is not a network" in line for line in result.log)
# [/docs:tests]


def test_local_logins_when_allowed(otpme_auth_run_login):
    assert otpme_auth_run_login(PLUGINS, LINE + " rhost_allow_local").code == "IGNORE"


# [docs:pam]
def test_in_front_of_pam_unix_through_real_libpam(otpme_auth_pam, otpme_auth_system_user):
    user = otpme_auth_system_user(password="s3cret")
    otpme_auth_pam.service("sshd", otpme_auth_pam.line(LINE, control="requisite"),
                           "auth required pam_unix.so")
    inside, outside = {"rhost": "10.9.8.7"}, {"rhost": "192.0.2.9"}
    otpme_auth_pam.run("sshd", user, answers=["s3cret"], items=inside).assert_code("SUCCESS")
    otpme_auth_pam.run("sshd", user, answers=["nope"], items=inside).assert_code("AUTH_ERR")
    refused = otpme_auth_pam.run("sshd", user, answers=["s3cret"], items=outside)
    refused.assert_code("AUTH_ERR")       # requisite: pam_unix never asked
    assert "Password" not in refused.output
# [/docs:pam]
