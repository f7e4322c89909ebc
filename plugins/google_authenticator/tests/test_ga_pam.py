"""google_authenticator end to end through real libpam, and interop with the real peer.

pamtester + pam_wrapper + pam_python run our plugin; the same secret files go
through Debian's pam_google_authenticator.so (peer_helper) and google-authenticator(1).
"""

import os
import shutil
import subprocess
import sys
import time

import pytest

from otpme_auth_google_authenticator.gaverify import compute_code
from otpme_auth_google_authenticator.secretfile import SecretFile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "peer"))
from peer_helper import FAKETIME, peer_available, run_peer  # noqa: E402

pytestmark = pytest.mark.pam
needs_peer = pytest.mark.skipif(not peer_available() or shutil.which("google-authenticator") is None,
                                reason="needs libpam-google-authenticator, pamtester, pam_wrapper, faketime")

SECRET = "2SH3V3GDW7ZNMGYE"
KEY = SecretFile.parse(SECRET).secret


def write(path, data, mode=0o600, uid=0, gid=0):
    if os.path.exists(path):
        os.unlink(path)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "wb") as fh:
        fh.write(data)
    os.chown(path, uid, gid)


def read(path):
    with open(path, "rb") as fh:
        return fh.read()


def run_ours(harness, path, response, now=None, options=""):
    """One login through real libpam with our plugin; ``now`` freezes the clock (libfaketime)."""
    harness.service("ours", harness.line("google_authenticator secret=%s user=0 %s" % (path, options)))
    env = {}
    if now is not None:
        env = {"LD_PRELOAD": "libpam_wrapper.so %s" % FAKETIME, "TZ": "UTC", "FAKETIME_NO_CACHE": "1",
               "FAKETIME": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now))}
    return harness.run("ours", "root", answers=[response], env=env)


def test_login_of_a_real_user_with_the_default_file(pam_harness, system_user, tmp_path):
    import pwd
    home = tmp_path / "home" / "ga"
    name = system_user(home=str(home))
    pw = pwd.getpwnam(name)
    home.mkdir(parents=True)
    os.chown(home, pw.pw_uid, pw.pw_gid)
    path = str(home / ".google_authenticator")
    write(path, (SECRET + '\n" DISALLOW_REUSE\n" TOTP_AUTH\n').encode(), 0o400, pw.pw_uid, pw.pw_gid)
    pam_harness.service("ga", pam_harness.line("google_authenticator debug"))
    code = compute_code(KEY, int(time.time()) // 30)
    first = pam_harness.run("ga", name, answers=[code])
    assert first.ok, first.output + "\n".join(first.log)
    assert "Verification code: " in first.output
    assert os.stat(path).st_uid == pw.pw_uid and oct(os.stat(path).st_mode & 0o777) == "0o400"
    again = pam_harness.run("ga", name, answers=[code])
    assert again.code == "AUTH_ERR"
    assert not any(code in line for line in pam_harness.read_log())


def test_forward_pass_hands_the_password_to_pam_unix(pam_harness, system_user, tmp_path):
    import pwd
    home = tmp_path / "home" / "fp"
    name = system_user(password="unix pw", home=str(home))
    pw = pwd.getpwnam(name)
    home.mkdir(parents=True)
    path = str(home / ".google_authenticator")
    write(path, (SECRET + '\n" TOTP_AUTH\n').encode(), 0o400, pw.pw_uid, pw.pw_gid)
    pam_harness.service("fp", pam_harness.line("google_authenticator forward_pass"),
                        "auth required pam_unix.so use_first_pass")
    code = compute_code(KEY, int(time.time()) // 30)
    result = pam_harness.run("fp", name, answers=["unix pw" + code])
    assert result.ok, result.output + "\n".join(result.log)
    assert "Password & verification code: " in result.output
    assert pam_harness.run("fp", name, answers=["wrong pw" + code]).code == "AUTH_ERR"


def test_nullok_ignores_users_without_a_file(pam_harness, tmp_path):
    pam_harness.service("nl", pam_harness.line("google_authenticator nullok secret=%s/${USER}" % tmp_path,
                                               control="sufficient"), "auth required pam_permit.so")
    result = pam_harness.run("nl", "root")
    assert result.ok and "Verification code" not in result.output


@pytest.mark.parametrize("body", ['" DISALLOW_REUSE\n" TOTP_AUTH\n', '" HOTP_COUNTER 5\n',
                                  '" TOTP_AUTH\n12345678\n'])
def test_twenty_parallel_logins_with_one_code_give_one_success(pam_harness, tmp_path, body):
    path = str(tmp_path / "secret")
    write(path, (SECRET + "\n" + body).encode())
    code = compute_code(KEY, 5 if "HOTP" in body else int(time.time()) // 30)
    if "12345678" in body:
        code = "12345678"  # a scratch code
    pam_harness.service("par", pam_harness.line("google_authenticator secret=%s user=0" % path))
    env = dict(os.environ, LD_PRELOAD="libpam_wrapper.so", PAM_WRAPPER="1",
               PAM_WRAPPER_SERVICE_DIR=pam_harness.service_dir)
    procs = [subprocess.Popen(["pamtester", "par", "root", "authenticate"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
             for _ in range(20)]
    for p in procs:
        p.stdin.write((code + "\n").encode())
        p.stdin.close()
    codes = [p.wait(timeout=120) for p in procs]
    assert codes.count(0) == 1, codes
    state = SecretFile.parse(read(path))
    if "12345678" in body:
        assert state.scratch_codes == ()
    elif "HOTP" in body:
        assert state.hotp_counter == 6 + 19  # one success (5 -> 6), 19 failures advance it
    else:
        assert len(state.disallow_reuse) == 1


@needs_peer
def test_a_file_made_by_google_authenticator_works_with_us(pam_harness, tmp_path):
    path = str(tmp_path / "made-by-peer")
    subprocess.run(["google-authenticator", "-t", "-d", "-f", "-r", "3", "-R", "30", "-w", "3",
                    "-Q", "NONE", "-C", "-q", "-s", path], check=True, capture_output=True)
    state = SecretFile.parse(read(path))
    assert oct(os.stat(path).st_mode & 0o777) == "0o400"
    now = 1700000000
    code = compute_code(state.secret, now // 30)
    assert run_ours(pam_harness, path, code, now).ok
    assert run_ours(pam_harness, path, code, now).code == "AUTH_ERR"  # DISALLOW_REUSE
    scratch = state.scratch_codes[0]
    assert run_ours(pam_harness, path, scratch, now + 1).ok
    assert scratch.encode() not in read(path)
    # ... and what we wrote is still the peer's: it refuses what we consumed, accepts the rest.
    (tmp_path / "p").mkdir()
    assert run_peer(tmp_path / "p", read(path), code, now + 31)[0] is False  # reused step
    assert run_peer(tmp_path / "p", read(path), state.scratch_codes[1], now + 32)[0] is True


@needs_peer
def test_files_we_updated_work_with_the_peer_and_both_agree(pam_harness, tmp_path):
    """Same file, clock and code: the same answer and the same bytes, step by step."""
    path = str(tmp_path / "secret")
    (tmp_path / "peer").mkdir()
    data = (SECRET + '\n" RATE_LIMIT 3 90\n" DISALLOW_REUSE\n" TOTP_AUTH\n12345678\n').encode()
    base = 1700000000
    steps = [(compute_code(KEY, base // 30), base), (compute_code(KEY, base // 30), base + 1),
             ("000000", base + 2), ("12345678", base + 40), (compute_code(KEY, base // 30 + 2), base + 60),
             (compute_code(KEY, base // 30 + 4), base + 120), ("12345678", base + 121),
             (compute_code(KEY, base // 30 + 6), base + 200)]
    for response, now in steps:
        write(path, data)
        ours = run_ours(pam_harness, path, response, now)
        after_ours = read(path)
        theirs, after_theirs, _ = run_peer(tmp_path / "peer", data, response, now)
        assert (ours.ok, after_ours) == (theirs, after_theirs), (response, now, ours.log[-3:])
        data = after_ours


@needs_peer
def test_hotp_and_skew_agree_with_the_peer(pam_harness, tmp_path):
    path = str(tmp_path / "secret")
    (tmp_path / "peer").mkdir()
    data = (SECRET + '\n" HOTP_COUNTER 3\n').encode()
    for response in ("000000", compute_code(KEY, 5), compute_code(KEY, 5), compute_code(KEY, 7)):
        for options in ("", "no_increment_hotp"):
            write(path, data)
            ours = run_ours(pam_harness, path, response, 1700000000, options)
            theirs, after, _ = run_peer(tmp_path / "peer", data, response, 1700000000,
                                        [options] if options else [])
            assert (ours.ok, read(path)) == (theirs, after), (response, options)
        data = after
    data = (SECRET + '\n" TOTP_AUTH\n').encode()
    base = 56666666
    for i in range(3):
        write(path, data)
        now = (base + i) * 30
        ours = run_ours(pam_harness, path, compute_code(KEY, base + i - 40), now)
        theirs, after, _ = run_peer(tmp_path / "peer", data, compute_code(KEY, base + i - 40), now)
        assert (ours.ok, read(path)) == (theirs, after), i
        data = after
    assert SecretFile.parse(data).time_skew == -40


@needs_peer
def test_a_file_enrolled_by_us_verifies_with_the_peer(tmp_path):
    path = str(tmp_path / "enrolled")
    cli = os.path.join(os.path.dirname(sys.executable), "otpme-auth")
    proc = subprocess.run([cli, "enroll", "totp", "--user", "root", "-s", path, "-Q", "NONE", "-q",
                           "-r", "5", "-R", "60", "-w", "5", "-e", "3"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert oct(os.stat(path).st_mode & 0o777) == "0o400"
    state = SecretFile.parse(read(path))
    assert len(state.secret) == 16 and len(state.scratch_codes) == 3
    assert state.rate_limit[:2] == (5, 60) and state.window_size == 5 and state.disallow_reuse == ()
    now = 1700000000
    (tmp_path / "peer").mkdir()
    ok, after, _ = run_peer(tmp_path / "peer", read(path), compute_code(state.secret, now // 30), now)
    assert ok
    assert run_peer(tmp_path / "peer", read(path), state.scratch_codes[0], now)[0]
