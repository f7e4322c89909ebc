"""otpme-auth: what an administrator sees."""

import io
import os
import subprocess
import sys

import pytest

from otpme_auth.cli import main


def run(*argv):
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def test_check_config_shows_plugins_options_values_and_origins():
    code, out = run("check-config", "passfile [passfile_path=/etc/pass words] debug create_home umask=0077")
    assert code == 0
    assert "passfile               enabled by passfile" in out
    assert "mkhomedir              enabled by create_home" in out
    assert "'/etc/pass words'" in out and "(passfile_path=/etc/pass words)" in out
    assert "debug" in out and "(debug)" in out
    assert "try_first_pass" in out and "(default)" in out
    assert "umask" in out and "0077" in out
    assert "installed but not enabled by this line (they will not run)" in out
    assert "tripwire" in out


def test_check_config_error_is_one_line_and_exit_2(capsys):
    code, out = run("check-config", "passfile cache_login_tokenz")
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cache_login_tokenz" in err


def test_typo_gets_a_suggestion(capsys):
    assert run("check-config", "passfile passfile_pth=/x")[0] == 2
    assert "did you mean passfile_path?" in capsys.readouterr().err


def test_check_config_shows_the_default_verifier():
    code, out = run("check-config", "create_home")
    assert code == 0 and "online                 enabled by (default verifier)" in out


def test_check_config_warns_when_no_verifier():
    from otpme_auth.testing import make_plugin

    from otpme_auth import flag
    from otpme_auth.registry import StaticRegistry
    home = make_plugin("home", options=[flag("create_home", enables=True)],
                       otpme_auth_post_login=lambda ctx: None)
    out = io.StringIO()
    assert main(["check-config", "create_home"], out=out,
                registry=StaticRegistry({"home": home})) == 0
    assert "no verifier is enabled; authentication will fail closed" in out.getvalue()


def test_list_plugins():
    code, out = run("list-plugins")
    assert code == 0
    assert "passfile  (otpme-auth-passfile" in out and "ok" in out
    assert "enabled by: mkhomedir, create_home" in out


def test_refresh_plugins_writes_the_cache(tmp_path):
    code, out = run("refresh-plugins", "--cache-dir", str(tmp_path))
    assert code == 0 and str(tmp_path) in out
    assert any(name.startswith("plugins-") for name in os.listdir(tmp_path))


def test_login_in_a_terminal(tmp_path):
    from otpme_auth_passfile import hash_line
    passwd = tmp_path / "passwd"
    passwd.write_text(hash_line("alice", "s3cret", iterations=1000) + "\n")
    os.chmod(passwd, 0o600)
    cli = os.path.join(os.path.dirname(sys.executable), "otpme-auth")
    for answer, expected, rc in (("s3cret", "PAM_SUCCESS", 0), ("nope", "PAM_AUTH_ERR", 1)):
        proc = subprocess.run([cli, "login", "alice", "passfile", "passfile_path=%s" % passwd],
                              input=answer + "\n", capture_output=True, text=True)
        assert proc.returncode == rc and expected in proc.stdout, proc.stderr
        assert "s3cret" not in proc.stderr


def test_usage_error_exits_2():
    with pytest.raises(SystemExit) as info:
        main(["no-such-command"])
    assert info.value.code == 2
