"""Tests of the example plugin, written the way a third-party author writes them.

The fixtures ``run_login``, ``pam_harness`` and ``system_user`` come from
otpme-auth's plugin kit (installed as a pytest plugin); no conftest needed.
"""

import os

import pytest

import otpme_auth_passfile as passfile

PLUGINS = {"passfile": passfile}


@pytest.fixture
def passwd(tmp_path):
    path = tmp_path / "passwd"
    path.write_text(passfile.hash_line("alice", "s3cret", iterations=1000) + "\n")
    os.chmod(path, 0o600)
    return "passfile passfile_path=%s" % path


def test_right_password(run_login, passwd):
    result = run_login(PLUGINS, passwd, user="alice", answers=["s3cret"])
    assert result.ok
    assert result.prompts == ["Password: "]


def test_wrong_password(run_login, passwd):
    result = run_login(PLUGINS, passwd, user="alice", answers=["guess"])
    assert result.code == "AUTH_ERR"
    assert any("wrong password" in line for line in result.log)


def test_unknown_user(run_login, passwd):
    assert run_login(PLUGINS, passwd, user="bob", answers=["s3cret"]).code == "USER_UNKNOWN"


def test_missing_file_is_unavailable(run_login, tmp_path):
    result = run_login(PLUGINS, "passfile passfile_path=%s/none" % tmp_path, answers=["x"])
    assert result.code == "AUTHINFO_UNAVAIL"


def test_world_writable_file_is_not_trusted(run_login, passwd, tmp_path):
    os.chmod(tmp_path / "passwd", 0o666)
    assert run_login(PLUGINS, passwd, user="alice", answers=["s3cret"]).code == "AUTHINFO_UNAVAIL"


def test_bad_option_value(run_login):
    result = run_login(PLUGINS, "passfile passfile_path=relative", answers=["x"])
    assert result.code == "SERVICE_ERR"
    assert any("passfile_path" in line for line in result.log)


def test_through_real_libpam(pam_harness, system_user, tmp_path):
    user = system_user()
    path = tmp_path / "pw"
    path.write_text(passfile.hash_line(user, "s3cret", iterations=1000) + "\n")
    os.chmod(path, 0o600)
    pam_harness.service("login", pam_harness.line("passfile passfile_path=%s" % path))
    assert pam_harness.run("login", user, answers=["s3cret"]).ok
    assert pam_harness.run("login", user, answers=["nope"]).code == "AUTH_ERR"
