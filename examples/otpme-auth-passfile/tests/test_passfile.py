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
    path.write_text(passfile.hash_line("alice", "s3cret", **passfile.CHEAPEST) + "\n")
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


def _option(tmp_path, text):
    """``passfile passfile_path=...`` of a root-only file holding ``text``."""
    path = tmp_path / "passwd"
    path.write_text(text)
    os.chmod(path, 0o600)
    return "passfile passfile_path=%s" % path


def _first_version_line(user, password):
    """A line as the plugin's first version wrote it: PBKDF2-SHA256, 1,000 iterations."""
    import hashlib
    salt = bytes(range(16))
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 1000)
    return "%s:1000:%s:%s\n" % (user, salt.hex(), digest.hex())


def test_a_first_version_line_pbkdf2_still_logs_in(otpme_auth_run_login, tmp_path):
    line = _option(tmp_path, _first_version_line("alice", "s3cret"))
    assert otpme_auth_run_login(PLUGINS, line, user="alice", answers=["s3cret"]).ok
    assert otpme_auth_run_login(PLUGINS, line, user="alice", answers=["s3creT"]).code == "AUTH_ERR"


def test_the_default_cost_is_argon2_cffis(tmp_path):
    assert passfile.hash_line("alice", "s3cret").startswith("alice:$argon2id$v=19$m=65536,t=3,p=4$")
    with pytest.raises(ValueError):
        passfile.hash_line("al:ice", "s3cret")


def _login_with_file(run_login, tmp_path, text):
    return run_login(PLUGINS, _option(tmp_path, text), user="alice", answers=["s3cret"])


@pytest.mark.parametrize("line", ["alice", "alice:$argon2id$v=19$broken", ":$argon2id$v=19$m=8,t=1,p=1$a$b",
                                  "alice:1000:zz:00", "alice:0:00:" + "00" * 32,
                                  # argon2's C code stops at a NUL: what follows would be ignored
                                  "alice:$argon2id$v=19$m=8,t=1,p=1$%s$%s\0junk" % ("A" * 22, "A" * 43)])
def test_a_malformed_line_makes_the_file_unusable(otpme_auth_run_login, tmp_path, line):
    result = _login_with_file(otpme_auth_run_login, tmp_path, line + "\n")
    assert result.code == "AUTHINFO_UNAVAIL"
    assert any("line 1 is not" in line for line in result.log)


def test_a_hash_argon2_cannot_read_is_unavailable_not_a_wrong_password(otpme_auth_run_login, tmp_path):
    result = _login_with_file(otpme_auth_run_login, tmp_path,   # a 3-byte hash
                              "alice:$argon2id$v=19$m=8,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAA\n")
    assert result.code == "AUTHINFO_UNAVAIL"
    assert any("the hash of alice" in line for line in result.log)


@pytest.mark.parametrize("typed", ["s3cr\udcffet", "s3\0cret", "\u00e9" * 5000])
def test_odd_passwords_are_wrong_passwords_and_never_logged(otpme_auth_run_login, passwd, typed):
    result = otpme_auth_run_login(PLUGINS, passwd, user="alice", answers=[typed])
    assert result.code == "AUTH_ERR"
    assert not any(typed[:4] in line or "codec" in line for line in result.log), result.log


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
    path.write_text(passfile.hash_line(user, "s3cret", **passfile.CHEAPEST) + "\n")
    os.chmod(path, 0o600)
    otpme_auth_pam.service("login", otpme_auth_pam.line("passfile passfile_path=%s" % path))
    assert otpme_auth_pam.run("login", user, answers=["s3cret"]).ok
    assert otpme_auth_pam.run("login", user, answers=["nope"]).code == "AUTH_ERR"
# [/docs:pam]


@pytest.mark.parametrize("name", ["#\rroot", "#\x0broot", "x\u2028root", "", " alice", "#alice",
                                  "al:ice", "a\nb"])
def test_add_refuses_a_user_name_that_could_forge_another_line(otpme_auth_run_login, tmp_path, monkeypatch,
                                                               capsys, name):
    # `add` run by a script with a name the user chose: "#\rroot" used to write one line that
    # the login reads as a comment and a line for root, with the attacker's password.
    path = tmp_path / "passwd"
    path.write_text(passfile.hash_line("root", "rootpw", **passfile.CHEAPEST) + "\n")
    os.chmod(path, 0o600)
    monkeypatch.setattr(passfile, "PARAMETERS", passfile.CHEAPEST)
    monkeypatch.setattr("getpass.getpass", lambda prompt: "pwned")
    before = path.read_text()
    assert passfile.main(["add", str(path), name]) == 2
    assert "user name" in capsys.readouterr().err
    assert path.read_text() == before
    line = "passfile passfile_path=%s" % path
    assert otpme_auth_run_login(PLUGINS, line, user="root", answers=["pwned"]).code == "AUTH_ERR"


def test_add_replaces_the_users_line_and_writes_a_private_file(tmp_path, monkeypatch):
    path = tmp_path / "passwd"
    path.write_text(passfile.hash_line("alice", "old", **passfile.CHEAPEST) + "\n")
    os.chmod(path, 0o600)
    stale = tmp_path / "passwd.tmp"       # left by an interrupted run, readable by all
    stale.write_text("junk")
    os.chmod(stale, 0o644)
    monkeypatch.setattr(passfile, "PARAMETERS", passfile.CHEAPEST)
    monkeypatch.setattr("getpass.getpass", lambda prompt: "new")
    assert passfile.main(["add", str(path), "alice"]) == 0
    entries = passfile.read_passfile(str(path))
    assert list(entries) == ["alice"] and passfile.check(entries["alice"], b"new")
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert sorted(os.listdir(tmp_path)) == ["passwd", "passwd.tmp"]   # no temp file left behind


def test_an_unknown_user_is_told_what_a_known_user_with_a_wrong_password_is_told(otpme_auth_run_login,
                                                                                  passwd):
    greeting = pytest.importorskip("otpme_auth_greeting")   # shows user messages with show_errors
    plugins = dict(PLUGINS, greeting=greeting)
    known = otpme_auth_run_login(plugins, passwd + " greeting show_errors", user="alice", answers=["guess"])
    unknown = otpme_auth_run_login(plugins, passwd + " greeting show_errors", user="bob", answers=["guess"])
    assert known.shown == ["Wrong password."]
    assert unknown.shown == known.shown


@pytest.mark.parametrize("content", [None, b"\xff\xfe not UTF-8\n"])
def test_add_says_why_it_cannot_write_without_a_traceback(tmp_path, monkeypatch, capsys, content):
    path = tmp_path / ("passwd" if content else "no-such-folder/passwd")
    if content:
        path.write_bytes(content)
    monkeypatch.setattr(passfile, "PARAMETERS", passfile.CHEAPEST)
    monkeypatch.setattr("getpass.getpass", lambda prompt: "s3cret")
    assert passfile.main(["add", str(path), "alice"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("otpme-passfile: cannot update %s: " % path) and "s3cret" not in err


def test_an_unknown_user_costs_what_the_files_users_cost(otpme_auth_run_login, tmp_path, monkeypatch):
    # After an upgrade every line is a first-version one (PBKDF2, ~5x cheaper than the default
    # Argon2id): checking unknown users against an Argon2id dummy told a prober who has a line.
    argon = passfile.hash_line("carol", "s3cret", **passfile.CHEAPEST).partition(":")[2]
    checked = []
    real_check = passfile.check
    monkeypatch.setattr(passfile, "check",
                        lambda encoded, pw: checked.append(encoded) or real_check(encoded, pw))
    for text, prefix in [(_first_version_line("alice", "s3cret"), "1000:"),
                         ("carol:%s\n" % argon, "$argon2id$v=19$m=8,t=1,p=1$")]:
        checked.clear()
        line = _option(tmp_path, text)
        assert otpme_auth_run_login(PLUGINS, line, user="bob", answers=["s3cret"]).code == "USER_UNKNOWN"
        [dummy] = checked
        assert dummy.startswith(prefix) and len(dummy) == len(text.partition(":")[2].strip())
        assert dummy not in text       # a zeroed copy, never a user's real hash


def test_a_password_that_is_not_utf8_can_be_added_and_logs_in(otpme_auth_run_login, tmp_path):
    typed = b"s3\xffcret".decode("utf-8", "surrogateescape")   # as the login decodes it
    line = _option(tmp_path, passfile.hash_line("alice", typed, **passfile.CHEAPEST) + "\n")
    assert otpme_auth_run_login(PLUGINS, line, user="alice", answers=[typed]).ok
