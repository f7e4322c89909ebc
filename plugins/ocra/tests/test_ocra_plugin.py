"""The ocra plugin through the host (plugin kit), its CLI, and once through real libpam."""

import hashlib
import io
import os
import re
import select
import subprocess
import time

import pytest

import otpme_auth_ocra as plugin
from otpme_auth.otp.ocra import ocra, timestamp, parse_suite
from otpme_auth_ocra import credfile

PLUGINS = {"ocra": plugin}
SUITE = "OCRA-1:HOTP-SHA1-6:C-QN08-PSHA1"
KEY = bytes.fromhex("3132333435363738393031323334353637383930")
PIN = hashlib.sha1(b"1234").digest()
KILL = hashlib.sha1(b"9999").digest()
CHALLENGE = "12345678"


@pytest.fixture
def cred_dir(tmp_path, monkeypatch):
    """write(**fields) -> path of DIR/alice; challenges are fixed to CHALLENGE."""
    d = tmp_path / "ocra"
    d.mkdir(mode=0o700)
    monkeypatch.setattr(credfile, "make_challenge", lambda suite, rng=None: CHALLENGE)

    def write(suite=SUITE, mode=0o600, **fields):
        fields.setdefault("counter", 0 if parse_suite(suite).counter else None)
        if parse_suite(suite).pin_algorithm:
            fields.setdefault("pin_hash", PIN)
        cred = credfile.OcraCredential(suite, KEY, **fields)
        p = d / "alice"
        if p.exists():
            p.unlink()
        p.write_bytes(credfile.serialize(cred))
        os.chmod(p, mode)
        return str(p)
    write.dir = str(d)
    return write


def response(counter=0, pin=PIN, suite=SUITE, challenge=CHALLENGE, **kw):
    return ocra(suite, KEY, challenge, counter=counter if parse_suite(suite).counter else None,
                pin_hash=pin if parse_suite(suite).pin_algorithm else None, **kw)


def login(run_login, cred_dir, answers, extra=""):
    return run_login(PLUGINS, "ocra dir=%s %s" % (cred_dir.dir, extra), user="alice", answers=answers)


def stored(path):
    with open(path, "rb") as fh:
        return credfile.parse(fh.read())


def test_valid_response_moves_the_counter(run_login, cred_dir):
    path = cred_dir()
    result = login(run_login, cred_dir, [response(0)])
    assert result.ok, result.log
    assert result.prompts == ["OCRA Challenge: 1234 5678\nOCRA Response: "]
    assert stored(path).counter == 1
    assert login(run_login, cred_dir, [response(0)]).code == "AUTH_ERR"  # used


def test_wrong_response_leaves_the_counter(run_login, cred_dir):
    path = cred_dir()
    result = login(run_login, cred_dir, ["000000"])
    assert result.code == "AUTH_ERR" and stored(path).counter == 0
    assert not any("000000" in line for line in result.log)


def test_counter_window(run_login, cred_dir):
    path = cred_dir(counter_window=3)
    assert login(run_login, cred_dir, [response(3)]).ok
    assert stored(path).counter == 4
    assert not login(run_login, cred_dir, [response(8)]).ok


def test_kill_pin_disables(run_login, cred_dir):
    path = cred_dir(kill_pin_hash=KILL)
    killed = login(run_login, cred_dir, [response(0, pin=KILL)])
    assert killed.code == "AUTH_ERR" and stored(path).disabled
    assert any("kill PIN" in line for line in killed.log)
    assert login(run_login, cred_dir, [response(0)]).code == "AUTH_ERR"


def test_time_based_suite_with_offset(run_login, cred_dir):
    suite = "OCRA-1:HOTP-SHA256-8:QN08-T1M"
    cred_dir(suite=suite, timestamp_offset=1)
    t = timestamp(parse_suite(suite), time.time())
    assert login(run_login, cred_dir, [response(suite=suite, timestamp_value=t - 1)]).ok
    assert not login(run_login, cred_dir, [response(suite=suite, timestamp_value=t - 5)]).ok


def test_cmsg_and_rmsg(run_login, cred_dir):
    cred_dir()
    result = login(run_login, cred_dir, [response(0)],
                   "[cmsg=%u - Challenge: %3c 100%%] [rmsg=Response to %c: ]")
    assert result.ok
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ UTC - Challenge: 123 456 78 100%\n"
                        r"Response to 12345678: ", result.prompts[0]), result.prompts


def test_echo_verification_code(run_login, cred_dir):
    cred_dir()
    result = login(run_login, cred_dir, [response(0)], "echo_verification_code")
    assert result.ok and result.transcript[0][0] == "prompt_echo_on"


# -- users without data: every nodata / fake_prompt combination (seed 004) --------------------

FAKE = "fake_prompt=OCRA-1:HOTP-SHA1-6:QN06-PSHA1"


@pytest.mark.parametrize("extra, code, prompted", [
    ("", "AUTHINFO_UNAVAIL", False),
    ("nodata=fail", "AUTHINFO_UNAVAIL", False),
    ("nodata=fail " + FAKE, "AUTH_ERR", True),
    (FAKE, "AUTH_ERR", True),
    ("nodata=succeed", "SUCCESS", False),
    ("nodata=succeed " + FAKE, "SUCCESS", True),
    ("nodata=ignore", "IGNORE", False),
    ("nodata=ignore " + FAKE, "IGNORE", True),
])
def test_nodata_and_fake_prompt(run_login, tmp_path, extra, code, prompted):
    d = tmp_path / "empty"
    d.mkdir()
    result = run_login(PLUGINS, "ocra dir=%s %s" % (d, extra), user="alice", answers=["123456"])
    assert result.code == code, result.log
    assert bool(result.prompts) is prompted
    if prompted:
        assert re.fullmatch(r"OCRA Challenge: \d{4} \d{2}\nOCRA Response: ", result.prompts[0])


def test_nodata_for_unknown_users_without_dir(run_login):
    result = run_login(PLUGINS, "ocra " + FAKE, user="no-such-user-xyz", answers=["1"])
    assert result.code == "AUTH_ERR" and len(result.prompts) == 1


def test_fake_challenges_look_like_real_ones(run_login, tmp_path):
    """Same format, length and prompt; the check takes the same order of time."""
    suite = "OCRA-1:HOTP-SHA1-6:C-QN08-PSHA1"
    d = tmp_path / "o"
    d.mkdir()
    (d / "alice").write_bytes(credfile.serialize(credfile.OcraCredential(
        suite, KEY, counter=0, counter_window=0, pin_hash=PIN)))
    os.chmod(d / "alice", 0o600)
    args = "ocra dir=%s fake_prompt=%s" % (d, suite)
    shape = re.compile(r"OCRA Challenge: \d{4} \d{4}\nOCRA Response: ")
    timings = {"alice": [], "bob": []}
    for _ in range(5):
        for user in timings:
            start = time.perf_counter()
            result = run_login(PLUGINS, args, user=user, answers=["000000"])
            timings[user].append(time.perf_counter() - start)
            assert result.code == "AUTH_ERR" and shape.fullmatch(result.prompts[0])
    real, fake = min(timings["alice"]), min(timings["bob"])
    assert fake / real < 5 and real / fake < 5, timings


def test_bad_fake_prompt_is_a_config_error(run_login, tmp_path):
    result = run_login(PLUGINS, "ocra dir=%s fake_prompt=OCRA-9:nonsense" % tmp_path, user="alice")
    assert result.code == "SERVICE_ERR" and result.prompts == []


def test_unsafe_files_are_refused(run_login, cred_dir, tmp_path):
    path = cred_dir(mode=0o644)
    assert login(run_login, cred_dir, [response(0)]).code == "AUTH_ERR"
    os.chmod(path, 0o600)
    os.chown(path, 4242, -1)
    result = login(run_login, cred_dir, [response(0)])
    assert result.code == "AUTH_ERR" and any("owned by root or the user" in line for line in result.log)
    os.chown(path, 0, -1)
    target = tmp_path / "elsewhere"
    os.rename(path, target)
    os.symlink(target, path)
    assert login(run_login, cred_dir, [response(0)]).code == "AUTH_ERR"


def test_home_file_of_a_real_user(run_login, system_user, tmp_path, monkeypatch):
    import pwd
    monkeypatch.setattr(credfile, "make_challenge", lambda suite, rng=None: CHALLENGE)
    home = tmp_path / "home" / "o"
    name = system_user(home=str(home))
    pw = pwd.getpwnam(name)
    home.mkdir(parents=True)
    f = home / ".ocra"
    f.write_bytes(credfile.serialize(credfile.OcraCredential(SUITE, KEY, counter=0, pin_hash=PIN)))
    os.chmod(f, 0o600)
    os.chown(f, pw.pw_uid, pw.pw_gid)
    assert run_login(PLUGINS, "ocra", user=name, answers=[response(0)]).ok
    assert os.stat(f).st_uid == pw.pw_uid


# -- otpme-auth ocra init | info | sync ------------------------------------------------------

def cli(argv, stdin="", monkeypatch=None):
    from otpme_auth.cli import main
    from otpme_auth.registry import StaticRegistry
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    out = io.StringIO()
    code = main(argv, out=out, registry=StaticRegistry(PLUGINS))
    return code, out.getvalue()


def test_cli_init_info_sync(tmp_path, monkeypatch, capsys):
    d = tmp_path / "dir"
    d.mkdir()
    base = ["ocra", "init", "--user", "root", "--dir", str(d)]
    code, out = cli(base + ["--suite", SUITE, "--key-stdin", "--counter", "10", "--counter-window", "2",
                            "--kill-pin"], KEY.hex() + "\n1234\n9999\n", monkeypatch)
    assert code == 0, capsys.readouterr().err
    path = d / "root"
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    cred = stored(path)
    assert (cred.key, cred.counter, cred.pin_hash, cred.kill_pin_hash) == (KEY, 10, PIN, KILL)
    assert KEY.hex() not in out
    code, _ = cli(base + ["--suite", SUITE], "1234\n", monkeypatch)
    assert code == 2 and "exists" in capsys.readouterr().err
    code, info = cli(["ocra", "info", "--user", "root", "--dir", str(d)], "", monkeypatch)
    assert code == 0 and "counter: 10" in info and "kill pin: set" in info
    assert KEY.hex() not in info and PIN.hex() not in info
    r1 = ocra(SUITE, KEY, "11111111", counter=50, pin_hash=PIN)
    r2 = ocra(SUITE, KEY, "22222222", counter=51, pin_hash=PIN)
    code, out = cli(["ocra", "sync", "--user", "root", "--dir", str(d), "--challenge1", "11111111",
                     "--response1", r1, "--challenge2", "22222222", "--response2", r2], "", monkeypatch)
    assert code == 0 and stored(path).counter == 52
    code, _ = cli(["ocra", "sync", "--user", "root", "--dir", str(d), "--challenge1", "11111111",
                   "--response1", r1, "--challenge2", "22222222", "--response2", r2], "", monkeypatch)
    assert code == 2  # the counter is past them now
    code, info = cli(["ocra", "info", "--user", "root", "-f", str(path)], "", monkeypatch)
    assert code == 0 and "counter: 52" in info


def test_cli_init_generates_a_key_and_refuses_bad_input(tmp_path, monkeypatch, capsys):
    d = tmp_path / "dir"
    d.mkdir()
    code, out = cli(["ocra", "init", "--user", "root", "--dir", str(d), "--suite",
                     "OCRA-1:HOTP-SHA256-8:QN08-T1M", "--timestamp-offset", "2"], "", monkeypatch)
    assert code == 0
    cred = stored(d / "root")
    assert cred.key.hex() in out and len(cred.key) == 32 and cred.timestamp_offset == 2
    code, _ = cli(["ocra", "init", "--user", "root", "--dir", str(d), "--suite", "bogus", "--force"], "",
                  monkeypatch)
    assert code == 2 and "--suite" in capsys.readouterr().err


# -- once through real libpam ------------------------------------------------------------------

def _interactive(harness, service, user, answer_for, timeout=30):
    env = dict(os.environ, LD_PRELOAD="libpam_wrapper.so", PAM_WRAPPER="1",
               PAM_WRAPPER_SERVICE_DIR=harness.service_dir)
    proc = subprocess.Popen(["pamtester", service, user, "authenticate"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    seen = b""
    deadline = time.monotonic() + timeout
    while b"Response: " not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 1)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            seen += chunk
    proc.stdin.write((answer_for(seen.decode()) + "\n").encode())
    proc.stdin.close()
    rest = proc.stdout.read()
    proc.wait(timeout=timeout)
    return proc.returncode, (seen + rest).decode()


@pytest.mark.pam
def test_through_real_libpam(pam_harness, tmp_path):
    d = tmp_path / "ocra"
    d.mkdir(mode=0o700)
    (d / "root").write_bytes(credfile.serialize(credfile.OcraCredential(SUITE, KEY, counter=7,
                                                                         pin_hash=PIN)))
    os.chmod(d / "root", 0o600)
    pam_harness.service("ocra", pam_harness.line("ocra dir=%s [cmsg=Challenge: %%c]" % d))

    def answer(text):
        challenge = re.search(r"Challenge: (\d{8})", text).group(1)
        return ocra(SUITE, KEY, challenge, counter=7, pin_hash=PIN)
    code, output = _interactive(pam_harness, "ocra", "root", answer)
    assert code == 0, output + "\n".join(pam_harness.read_log())
    assert stored(d / "root").counter == 8
    code, output = _interactive(pam_harness, "ocra", "root", lambda text: "000000")
    assert code != 0 and stored(d / "root").counter == 8
    pam_harness.service("nodata", pam_harness.line("ocra dir=%s/none nodata=fail" % d))
    result = pam_harness.run("nodata", "root")
    assert result.code == "AUTHINFO_UNAVAIL"
