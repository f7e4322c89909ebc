"""``otpme-auth enroll totp|hotp``: the peer tool's flags, file layout, URI and QR code."""

import io
import os
import shutil
import subprocess

import pytest

import otpme_auth_google_authenticator as plugin
from otpme_auth_google_authenticator.secretfile import SecretFile

PLUGINS = {"google_authenticator": plugin}


def enroll(argv, capsys=None):
    from otpme_auth.cli import main
    from otpme_auth.registry import StaticRegistry
    out = io.StringIO()
    code = main(["enroll"] + argv, out=out, registry=StaticRegistry(PLUGINS))
    return code, out.getvalue()


def layout(data):
    """The file without its random parts: option lines, and how many scratch codes."""
    sf = SecretFile.parse(data)
    return [raw for kind, _, raw in sf.lines() if kind == "option"], len(sf.scratch_codes)


@pytest.mark.skipif(shutil.which("google-authenticator") is None, reason="needs google-authenticator(1)")
@pytest.mark.parametrize("flags", [
    ["-t", "-d", "-r", "3", "-R", "30", "-w", "3"],
    ["-t", "-D", "-u", "-w", "17", "-S", "60", "-e", "0"],
    ["-c", "-u", "-W", "-e", "2"],
])
def test_same_layout_as_google_authenticator(tmp_path, flags):
    theirs, ours = tmp_path / "theirs", tmp_path / "ours"
    subprocess.run(["google-authenticator", "-f", "-C", "-q", "-Q", "NONE", "-s", str(theirs)] + flags,
                   check=True, capture_output=True)
    kind = "hotp" if "-c" in flags else "totp"
    code, _ = enroll([kind, "--user", "root", "-q", "-s", str(ours)] + flags)
    assert code == 0
    assert layout(ours.read_bytes()) == layout(theirs.read_bytes())
    assert os.stat(ours).st_mode & 0o777 == os.stat(theirs).st_mode & 0o777 == 0o400
    assert len(SecretFile.parse(ours.read_bytes()).secret) == len(SecretFile.parse(theirs.read_bytes()).secret)


def test_output_uri_and_qr(tmp_path):
    path = tmp_path / "f"
    code, out = enroll(["totp", "--user", "root", "-s", str(path), "-l", "alice@example", "-i", "Ex Ample",
                        "-S", "60"])
    assert code == 0
    key = SecretFile.parse(path.read_bytes()).secret_base32
    assert "otpauth://totp/alice@example?secret=%s&issuer=Ex%%20Ample&period=60" % key in out
    assert "\x1b[30;47;27m" in out and "Your emergency scratch codes are:" in out
    code, out = enroll(["hotp", "--user", "root", "-s", str(tmp_path / "h"), "-Q", "utf8", "-e", "0"])
    assert code == 0 and "&counter=1" in out and "\u2588" in out
    assert "scratch" not in out
    code, out = enroll(["hotp", "--user", "root", "-s", str(tmp_path / "q"), "-Q", "none"])
    assert code == 0 and "\x1b[" not in out and "otpauth://hotp/" in out


def test_mistakes_are_one_line_errors(tmp_path, capsys):
    path = str(tmp_path / "f")
    for argv in (["totp", "-c"], ["hotp", "-d"], ["hotp", "-S", "30"], ["totp", "-e", "11"],
                 ["totp", "-u", "-r", "3", "-R", "30"], ["totp", "-r", "3"], ["totp", "-w", "3", "-W"],
                 ["totp", "-w", "101"], ["totp", "--user", "no-such-user-xyz"]):
        code, _ = enroll(argv + ["-s", path, "-q"] + ([] if "--user" in argv else ["--user", "root"]))
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1, (argv, err)
        assert not os.path.exists(path)
    assert enroll(["totp", "--user", "root", "-s", path, "-q"])[0] == 0
    before = open(path, "rb").read()
    assert enroll(["totp", "--user", "root", "-s", path, "-q"])[0] == 2
    assert "-f" in capsys.readouterr().err and open(path, "rb").read() == before
    assert enroll(["totp", "--user", "root", "-s", path, "-q", "-f"])[0] == 0
    assert open(path, "rb").read() != before


def test_default_file_of_a_user_is_theirs(system_user, tmp_path, run_login):
    import pwd
    home = tmp_path / "home" / "e"
    name = system_user(home=str(home))
    pw = pwd.getpwnam(name)
    home.mkdir(parents=True)
    os.chown(home, pw.pw_uid, pw.pw_gid)
    assert enroll(["totp", "--user", name, "-q"])[0] == 0
    st = os.stat(home / ".google_authenticator")
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (pw.pw_uid, pw.pw_gid, 0o400)
    state = SecretFile.parse((home / ".google_authenticator").read_bytes())
    from otpme_auth_google_authenticator.gaverify import compute_code
    import time
    assert run_login(PLUGINS, "google_authenticator", user=name,
                     answers=[compute_code(state.secret, int(time.time()) // 30)]).ok
