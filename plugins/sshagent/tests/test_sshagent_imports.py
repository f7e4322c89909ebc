"""paramiko is paid for only when an agent is actually asked to sign."""

from otpme_auth.testing.imports import HEAVY, heavy, login_imports

FORBIDDEN = HEAVY + ("paramiko", "cryptography", "otpme_auth_sshagent.session",
                     "otpme_auth_sshagent.authkeys", "otpme_auth_sshagent.local")


def test_online_line_without_an_agent_imports_no_paramiko(tmp_path, monkeypatch):
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    code, modules = login_imports(tmp_path, ["online", "sshagent",
                                             "host_config=%s" % (tmp_path / "missing.conf")],
                                  answers=["pw"])
    assert code == "AUTHINFO_UNAVAIL"
    assert "otpme_auth_sshagent" in modules
    assert heavy(modules, FORBIDDEN) == [], heavy(modules, FORBIDDEN)


def test_line_without_sshagent_imports_none_of_it(tmp_path):
    code, modules = login_imports(tmp_path, ["online", "host_config=%s" % (tmp_path / "x.conf")],
                                  answers=["pw"])
    assert heavy(modules, HEAVY + ("paramiko", "otpme_auth_sshagent")) == []
