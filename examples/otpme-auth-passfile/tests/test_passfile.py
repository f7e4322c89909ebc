"""Tests of the example plugin, written the way a third-party author writes them.

The fixtures ``otpme_auth_run_login``, ``otpme_auth_pam`` and ``otpme_auth_system_user`` come from
otpme-auth's plugin kit (``pytest -p otpme_auth.testing.plugin``, set in this folder's
pyproject.toml; a conftest.py with ``pytest_plugins = ["otpme_auth.testing.plugin"]`` works too).
"""

import os

import pytest

import otpme_auth_passfile as passfile

PLUGINS = {"passfile": passfile}


# [docs:tests]
@pytest.fixture
def passwd(tmp_path):
    path = tmp_path / "passwd"
    path.write_text(passfile.hash_line("alice", "s3cret", iterations=1000) + "\n")
    os.chmod(path, 0o600)
    return "passfile passfile_path=%s" % path


def test_right_password(otpme_auth_run_login, passwd):
    result = otpme_auth_run_login(PLUGINS, passwd, user="alice", answers=["s3cret"])
    assert result.ok
    assert result.prompts == ["Password: "]


def test_wrong_password(otpme_auth_run_login, passwd):
    result = otpme_auth_run_login(PLUGINS, passwd, user="alice", answers=["guess"])
    assert result.code == "AUTH_ERR"
    assert any("wrong password" in line for line in result.log)
# [/docs:tests]


def test_unknown_user(otpme_auth_run_login, passwd):
    assert otpme_auth_run_login(PLUGINS, passwd, user="bob", answers=["s3cret"]).code == "USER_UNKNOWN"


def test_missing_file_is_unavailable(otpme_auth_run_login, tmp_path):
    result = otpme_auth_run_login(PLUGINS, "passfile passfile_path=%s/none" % tmp_path, answers=["x"])
    assert result.code == "AUTHINFO_UNAVAIL"


def test_world_writable_file_is_not_trusted(otpme_auth_run_login, passwd, tmp_path):
    os.chmod(tmp_path / "passwd", 0o666)
    assert otpme_auth_run_login(PLUGINS, passwd, user="alice", answers=["s3cret"]).code == "AUTHINFO_UNAVAIL"


def test_bad_option_value(otpme_auth_run_login):
    result = otpme_auth_run_login(PLUGINS, "passfile passfile_path=relative", answers=["x"])
    assert result.code == "SERVICE_ERR"
    assert any("passfile_path" in line for line in result.log)


# [docs:pam]
def test_through_real_libpam(otpme_auth_pam, otpme_auth_system_user, tmp_path):
    user = otpme_auth_system_user()
    path = tmp_path / "pw"
    path.write_text(passfile.hash_line(user, "s3cret", iterations=1000) + "\n")
    os.chmod(path, 0o600)
    otpme_auth_pam.service("login", otpme_auth_pam.line("passfile passfile_path=%s" % path))
    assert otpme_auth_pam.run("login", user, answers=["s3cret"]).ok
    assert otpme_auth_pam.run("login", user, answers=["nope"]).code == "AUTH_ERR"
# [/docs:pam]
