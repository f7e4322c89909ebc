"""The google_authenticator plugin through the host (plugin kit): every option and failure path."""

import os
import subprocess
import time

import pytest

import otpme_auth_google_authenticator as plugin
from otpme_auth_google_authenticator.gaverify import compute_code
from otpme_auth_google_authenticator.secretfile import SecretFile

SECRET = "2SH3V3GDW7ZNMGYE"
KEY = SecretFile.parse(SECRET).secret
PLUGINS = {"google_authenticator": plugin}


def now_code(offset=0, step=30):
    return compute_code(KEY, int(time.time()) // step + offset)


def hotp_code(counter):
    return compute_code(KEY, counter)


@pytest.fixture
def secret_file(tmp_path):
    """write(body, mode=0o600, uid=None) -> path of a secret file in a private dir."""
    d = tmp_path / "ga"
    d.mkdir(mode=0o700)

    def write(body='" TOTP_AUTH\n', mode=0o600, uid=None, name="secret"):
        p = d / name
        if p.exists():
            p.unlink()
        p.write_text(SECRET + "\n" + body)
        os.chmod(p, mode)
        if uid is not None:
            os.chown(p, uid, -1)
        return str(p)
    return write


def login(path, answers=(), extra="", **kw):
    args = "google_authenticator secret=%s user=%d %s" % (path, os.getuid(), extra)
    return pytest.importorskip("otpme_auth.testing").run_login(PLUGINS, args, answers=answers, **kw)


def read(path):
    with open(path) as fh:
        return fh.read()


def test_valid_code_allows_and_prompts_like_the_peer(secret_file):
    path = secret_file()
    result = login(path, [now_code()])
    assert result.ok, result.log
    assert result.prompts == ["Verification code: "]
    assert result.transcript[0][0] == "prompt_echo_off"


def test_wrong_code_denies_and_never_logs_it(secret_file):
    path = secret_file()
    wrong = "%06d" % ((int(now_code()) + 1) % 1000000)
    result = login(path, [wrong])
    assert result.code == "AUTH_ERR"
    assert not any(wrong in line for line in result.log)


def test_a_code_with_a_password_prefix_is_refused_without_forward_pass(secret_file):
    path = secret_file()
    assert login(path, ["pw" + now_code()]).code == "AUTH_ERR"


def test_no_file_without_nullok_still_prompts_then_refuses(secret_file, tmp_path):
    result = login(str(tmp_path / "ga" / "absent"), ["123456"])
    assert result.code == "AUTH_ERR"
    assert result.prompts == ["Verification code: "]


def test_no_file_with_nullok_is_ignored_without_prompt(secret_file, tmp_path):
    secret_file()
    result = login(str(tmp_path / "ga" / "absent"), [], "nullok")
    assert result.code == "IGNORE"
    assert result.prompts == []


def test_nullok_ignores_a_missing_directory_too(tmp_path):
    result = login(str(tmp_path / "no-such-dir" / "secret"), [], "nullok")
    assert result.code == "IGNORE" and result.prompts == []
    assert login(str(tmp_path / "no-such-dir" / "secret"), ["123456"]).code == "AUTH_ERR"


def test_nullok_does_not_skip_users_that_have_a_file(secret_file):
    path = secret_file()
    assert login(path, ["000000"], "nullok").code == "AUTH_ERR"
    assert login(path, [now_code()], "nullok").ok


def test_unknown_user_is_prompted_then_refused(run_login):
    result = run_login(PLUGINS, "google_authenticator", user="no-such-user-xyz", answers=["123456"])
    assert result.code == "AUTH_ERR" and result.prompts == ["Verification code: "]


def test_secret_placeholders_user_and_home(system_user, tmp_path, run_login):
    home = tmp_path / "home" / "u"
    name = system_user(home=str(home))
    import pwd
    pw = pwd.getpwnam(name)
    home.mkdir(parents=True)
    (home / ".google_authenticator").write_text(SECRET + '\n" TOTP_AUTH\n')
    os.chown(home / ".google_authenticator", pw.pw_uid, pw.pw_gid)
    os.chmod(home / ".google_authenticator", 0o400)
    assert run_login(PLUGINS, "google_authenticator", user=name, answers=[now_code()]).ok
    (home / ("ga-%s" % name)).write_text(SECRET + '\n" TOTP_AUTH\n')
    os.chown(home / ("ga-%s" % name), pw.pw_uid, pw.pw_gid)
    os.chmod(home / ("ga-%s" % name), 0o600)
    for spec in ("${HOME}/ga-${USER}", "~/ga-${USER}"):
        result = run_login(PLUGINS, "google_authenticator secret=%s" % spec, user=name,
                           answers=[now_code()])
        assert result.ok, (spec, result.log)
    # The file must be the user's: a root-owned one is refused (unless no_strict_owner).
    os.chown(home / ".google_authenticator", 0, 0)
    assert run_login(PLUGINS, "google_authenticator", user=name, answers=[now_code()]).code == "AUTH_ERR"
    assert run_login(PLUGINS, "google_authenticator no_strict_owner", user=name,
                     answers=[now_code()]).ok


def test_user_option_sets_the_required_owner(secret_file):
    path = secret_file(uid=4242)
    result = login(path, [now_code()])  # user=<our uid>: owner 4242 refused
    assert result.code == "AUTH_ERR"
    assert any("must be owned by uid" in line for line in result.log)
    from otpme_auth.testing import run_login
    ok = run_login(PLUGINS, "google_authenticator secret=%s user=4242" % path, answers=[now_code()])
    assert ok.ok, ok.log
    assert run_login(PLUGINS, "google_authenticator secret=%s user=no-such-user-xyz" % path,
                     answers=[now_code()]).code == "SERVICE_ERR"


def test_allowed_perm(secret_file):
    path = secret_file(mode=0o640)
    result = login(path, [now_code()])
    assert result.code == "AUTH_ERR" and any("mode 0640" in line for line in result.log)
    assert login(path, [now_code()], "allowed_perm=0640").ok
    assert login(secret_file(mode=0o400), [now_code(0)]).ok  # stricter modes are fine
    assert login(path, [now_code()], "allowed_perm=0").code == "SERVICE_ERR"  # the peer refuses 0


def test_symlinks_are_never_followed(secret_file, tmp_path):
    target = secret_file()
    link = tmp_path / "ga" / "link"
    os.symlink(target, link)
    result = login(str(link), [now_code()])
    assert result.code == "AUTH_ERR" and any("symlink" in line for line in result.log)


def test_rate_limit_is_checked_before_the_prompt(secret_file):
    path = secret_file('" RATE_LIMIT 2 60\n" TOTP_AUTH\n')
    assert login(path, ["000000"]).code == "AUTH_ERR"
    assert login(path, ["000000"]).code == "AUTH_ERR"
    third = login(path, [now_code()])
    assert third.code == "AUTH_ERR" and third.prompts == []
    assert len(SecretFile.parse(read(path)).rate_limit[2]) == 2


def test_disallow_reuse(secret_file):
    path = secret_file('" DISALLOW_REUSE\n" TOTP_AUTH\n')
    code = now_code()
    assert login(path, [code]).ok
    assert login(path, [code]).code == "AUTH_ERR"
    assert SecretFile.parse(read(path)).disallow_reuse


def test_hotp_counter_advances_and_no_increment_hotp(secret_file):
    path = secret_file('" HOTP_COUNTER 1\n')
    assert login(path, ["000000"]).code == "AUTH_ERR"
    assert SecretFile.parse(read(path)).hotp_counter == 2
    assert login(path, ["000000"], "no_increment_hotp").code == "AUTH_ERR"
    assert SecretFile.parse(read(path)).hotp_counter == 2
    assert login(path, [hotp_code(3)]).ok
    assert SecretFile.parse(read(path)).hotp_counter == 4
    assert login(path, [hotp_code(3)]).code == "AUTH_ERR"


def test_scratch_codes_are_single_use(secret_file):
    path = secret_file('" TOTP_AUTH\n12345678\n87654321\n')
    assert login(path, ["12345678"]).ok
    assert "12345678" not in read(path) and "87654321" in read(path)
    assert login(path, ["12345678"]).code == "AUTH_ERR"


def test_skew_is_learned_unless_noskewadj(secret_file, monkeypatch):
    path = secret_file()
    base = 56_000_000
    clock = [0]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    # Three codes 100 steps ahead, in three consecutive steps, teach the skew.
    results = []
    for i in range(3):
        clock[0] = (base + i) * 30 + 1
        results.append(login(path, [compute_code(KEY, base + 100 + i)]).ok)
    assert results == [False, False, True]
    assert SecretFile.parse(read(path)).time_skew == 100
    clock[0] = (base + 10) * 30
    assert login(path, [compute_code(KEY, base + 110)]).ok  # the skew is applied now
    path = secret_file()
    for i in range(3):
        clock[0] = (base + i) * 30 + 1
        assert not login(path, [compute_code(KEY, base + 100 + i)], "noskewadj").ok
    assert "SKEW" not in read(path)


def test_try_first_pass(secret_file):
    path = secret_file()
    stacked = login(path, [], "try_first_pass", authtok="password" + now_code())
    assert stacked.ok and stacked.prompts == []
    retried = login(path, [now_code()], "try_first_pass", authtok="password")
    assert retried.ok and retried.prompts == ["Verification code: "]


def test_try_first_pass_keeps_a_hard_failure_final(secret_file):
    path = secret_file('" DISALLOW_REUSE\n" TOTP_AUTH\n')
    code = now_code()
    assert login(path, [code]).ok
    again = login(path, ["whatever"], "try_first_pass", authtok=code)
    assert again.code == "AUTH_ERR" and again.prompts == []  # the peer does not prompt after reuse


def test_use_first_pass(secret_file):
    path = secret_file()
    assert login(path, [], "use_first_pass", authtok="pw" + now_code()).ok
    none = login(path, [], "use_first_pass")
    assert none.code == "AUTH_ERR" and none.prompts == []


def test_forward_pass_one_prompt_password_forwarded(secret_file):
    path = secret_file('" TOTP_AUTH\n12345678\n')
    result = login(path, ["hunter2" + now_code()], "forward_pass")
    assert result.ok and result.prompts == ["Password & verification code: "]
    assert result.authtok == "hunter2"
    scratch = login(path, ["pw12345678"], "forward_pass")
    assert scratch.ok and scratch.authtok == "pw"


def test_authtok_prompt_and_echo(secret_file):
    path = secret_file()
    result = login(path, [now_code()], "[authtok_prompt=Your code: ] echo_verification_code")
    assert result.ok and result.prompts == ["Your code: "]
    assert result.transcript[0][0] == "prompt_echo_on"


def test_debug_logs_without_secrets(secret_file):
    path = secret_file('" TOTP_AUTH\n12345678\n')
    result = login(path, ["12345678"], "debug")
    assert result.ok
    text = "\n".join(result.log)
    assert "12345678" not in text and SECRET not in text and "written" in text


def test_grace_period(secret_file, make_context):
    from otpme_auth.options import default_view
    path = secret_file('" DISALLOW_REUSE\n" TOTP_AUTH\n')
    values = dict((o.name, o.default) for o in plugin.otpme_auth_declare_options())
    values.update(secret=path, user=str(os.getuid()), grace_period=60)
    from otpme_auth.options import OptionsView
    options = OptionsView("google_authenticator", values, {})
    assert default_view  # (imported for symmetry with the kit)

    def one(answers, rhost):
        ctx = make_context(answers=answers)
        ctx.rhost = rhost
        plugin.otpme_auth_collect_credentials(ctx, options)
        return plugin.otpme_auth_verify(ctx, options), ctx
    decision, _ = one([now_code()], "192.0.2.7")
    assert decision.verdict.name == "ALLOW"
    assert "LAST0 192.0.2.7" in read(path)
    decision, ctx = one([], "192.0.2.7")  # no prompt within the grace period
    assert decision.verdict.name == "ALLOW" and ctx.conversation.prompts == []
    decision, ctx = one(["000000"], "198.51.100.1")
    assert decision.verdict.name == "DENY" and ctx.conversation.prompts == ["Verification code: "]


def test_corrupt_file_is_refused_after_a_prompt(secret_file):
    path = secret_file('" WINDOW_SIZE 0\n" TOTP_AUTH\n')
    assert login(path, [now_code()]).code == "AUTH_ERR"
    with open(path, "w") as fh:
        fh.write("!!!!\n")
    result = login(path, [now_code()])
    assert result.code == "AUTH_ERR" and result.prompts == ["Verification code: "]
    assert not any("!!!!" in line for line in result.log)


# -- full and read-only filesystems (a real tmpfs) ------------------------------------------

@pytest.fixture
def small_fs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,nr_inodes=64,mode=0700", "tmpfs", str(mnt)],
                      capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _fill(directory):
    with open(os.path.join(directory, "filler"), "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError:
            pass


def test_full_filesystem_refuses_and_truncates_nothing(small_fs):
    path = str(small_fs / "secret")
    body = SECRET + '\n" DISALLOW_REUSE\n" TOTP_AUTH\n'
    with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as fh:
        fh.write(body)
    _fill(str(small_fs))
    result = login(path, [now_code()])
    assert result.code == "AUTH_ERR"
    assert any("full" in line for line in result.log), result.log
    assert read(path) == body
    readonly = login(path, [now_code()], "allow_readonly")
    assert readonly.ok and any("allow_readonly" in line for line in readonly.log)
    assert read(path) == body


def test_full_filesystem_does_not_lift_the_rate_limit(small_fs):
    path = str(small_fs / "secret")
    body = SECRET + '\n" RATE_LIMIT 3 30\n" TOTP_AUTH\n'
    with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as fh:
        fh.write(body)
    _fill(str(small_fs))
    result = login(path, [now_code()])
    assert result.code == "AUTH_ERR" and any("rate limit" in line for line in result.log)
    assert read(path) == body
    assert login(path, [now_code()], "allow_readonly").ok


def test_read_only_filesystem(small_fs):
    path = str(small_fs / "secret")
    body = SECRET + '\n" DISALLOW_REUSE\n" TOTP_AUTH\n'
    with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as fh:
        fh.write(body)
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    result = login(path, [now_code()])
    assert result.code == "AUTH_ERR" and any("read-only" in line for line in result.log)
    readonly = login(path, [now_code()], "allow_readonly")
    assert readonly.ok, readonly.log
    assert any("read-only" in line for line in readonly.log)
    assert read(path) == body
