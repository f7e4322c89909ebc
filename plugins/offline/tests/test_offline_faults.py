"""Faults, through real libpam (pam_wrapper + pam_python + pamtester) with a real server.

The killed-writer fault (a writer killed at random points, 200+ trials) is
covered at the library level: test_offline_processes.py::test_killed_writers_*.
"""

import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from otpme_auth.otp.base32 import b32decode
from otpme_auth.otp.hotp import totp
from otpme_auth_offline.cache import OfflineCache

from offline_testlib import FAST_KDF, PW

BAD = "bad guess 123"


def fresh_step():
    """Wait until a TOTP step has at least 8 s left, so a test's codes stay in the window."""
    if time.time() % 30 > 22:
        time.sleep(30 - time.time() % 30 + 0.1)


def code(secret, at=None):
    return totp(b32decode(secret), time.time() if at is None else at)


class Site:
    """A joined host with one user and a PAM service ``login`` with the offline cache."""

    def __init__(self, realm, pam, system_user, second_factor=None, kdf=FAST_KDF, extra=""):
        self.realm, self.pam = realm, pam
        self.user = system_user()
        self.secret = realm.add_user(self.user, PW, second_factor=second_factor, offline=True)
        jotp = realm.add_host("h1", tokens=["%s/pass" % self.user])
        realm.start()
        self.conf = realm.join("h1", jotp)
        self.cache_dir = os.path.join(pam.dir, "offline")
        self.options = ("try_first_pass host_config=%s connect_timeout=1 cache_login_tokens "
                        "offline_cache_dir=%s %s %s" % (self.conf, self.cache_dir, kdf, extra))
        pam.service("login", pam.line(self.options))
        self.token = "%s/pass" % self.user

    def run(self, typed):
        """One pamtester login; ``result.new`` holds only this run's log lines."""
        mark = len(self.pam.read_log())
        result = self.pam.run("login", self.user, answers=[typed])
        result.new = result.log[mark:]
        return result

    def typed(self, at=None):
        return PW + (code(self.secret, at) if self.secret else "")

    @property
    def cache(self):
        return OfflineCache(self.cache_dir)

    def token_file(self):
        return os.path.join(self.cache_dir, self.user, "token." + self.token.replace("/", "%2F"))


def no_traceback(result):
    assert "Traceback" not in result.output
    assert not any("Traceback" in line for line in result.log)


def test_server_stopped_offline_within_connect_timeout_plus_kdf(pam_harness, system_user, realm):
    """Seed-like parameters (64 MiB, t=3, 4 lanes): the bar is connect_timeout + KDF time."""
    from otpme_auth_offline.keyfunc import derive_key, parse_key_func, choose_params
    kdf = "offline_key_func=Argon2_i;min_mem:65536,max_mem:65536,iterations:3,threads:4"
    site = Site(realm, pam_harness, system_user, kdf=kdf)
    assert site.run(PW).ok
    realm.stop()
    params = choose_params(parse_key_func(kdf.split("=", 1)[1]))
    started = time.perf_counter()
    derive_key(b"x" * 20, b"s" * 16, params)
    kdf_time = time.perf_counter() - started
    started = time.perf_counter()
    result = site.run(PW)
    elapsed = time.perf_counter() - started
    assert result.ok, result.log
    assert any("authenticated %s offline" % site.user in line for line in result.log)
    # 1 s connect_timeout + the KDF + a cold pamtester/pam_python start (~0.3 s here)
    assert elapsed < 1 + kdf_time + 1.0, (elapsed, kdf_time)


def test_server_that_never_answers_then_offline(pam_harness, system_user, realm):
    """TLS completes, then silence: connection_timeout holds, then the cache is used."""
    site = Site(realm, pam_harness, system_user)
    assert site.run(PW).ok
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(realm.server_dir, "server.pem"),
                        os.path.join(realm.server_dir, "server.key"))
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    held = []

    def serve():
        try:
            while True:
                conn, _ = listener.accept()
                held.append(ctx.wrap_socket(conn, server_side=True))
        except OSError:
            pass
    threading.Thread(target=serve, daemon=True).start()
    with open(site.conf) as fh:
        text = fh.read().replace(realm.server, "127.0.0.1:%d" % port)
    with open(site.conf, "w") as fh:
        fh.write(text)
    pam_harness.service("login", pam_harness.line(site.options + " connection_timeout=1"))
    started = time.perf_counter()
    result = site.run(PW)
    elapsed = time.perf_counter() - started
    listener.close()
    assert result.ok, result.log
    assert any("timed out" in line for line in result.log)
    assert 1 <= elapsed < 3, elapsed


@pytest.mark.parametrize("refusal", ["wrong_code", "user_disabled", "token_disabled", "blocked"])
def test_server_refusal_never_falls_back(pam_harness, system_user, realm, refusal):
    site = Site(realm, pam_harness, system_user, second_factor="totp")
    fresh_step()
    assert site.run(site.typed()).ok
    later = time.time() + 30     # a code the cache would accept (next step), not yet used
    if refusal == "wrong_code":
        typed = PW + ("%06d" % ((int(code(site.secret, later)) + 1) % 10 ** 6))
    else:
        if refusal == "user_disabled":
            realm.admin("user", "disable", site.user)
        elif refusal == "token_disabled":
            realm.admin("token", "disable", site.token)
        else:
            realm.admin("accessgroup", "max_fail", "LOGIN", "1")
            assert site.run(BAD).code == "AUTH_ERR"
        typed = site.typed(later)
    result = site.run(typed)
    assert result.code == "AUTH_ERR"
    assert any("DENY by online" in line for line in result.new)
    assert not any("offline" in line or "authenticated" in line for line in result.new)
    # the cache would have accepted it: the server down, the same text logs in offline
    if refusal != "wrong_code":
        realm.stop()
        assert site.run(typed).ok


def test_damaged_cache_refused_with_a_clear_line(pam_harness, system_user, realm, tmp_path):
    site = Site(realm, pam_harness, system_user)
    assert site.run(PW).ok
    realm.stop()
    path = site.token_file()
    pristine = tmp_path / "pristine"
    shutil.copy2(path, pristine)
    victim = tmp_path / "victim"
    victim.write_bytes(b"do not touch\n")
    os.chmod(victim, 0o600)
    uid = int(subprocess.run(["id", "-u", site.user], capture_output=True, text=True).stdout)

    def restore():
        if os.path.lexists(path):
            os.unlink(path)
        shutil.copy2(pristine, path)
        os.chown(path, 0, 0)
        os.chmod(path, 0o600)
        failures = os.path.join(os.path.dirname(path), "failures")
        if os.path.exists(failures):
            os.unlink(failures)

    def truncate():
        with open(path, "r+b") as fh:
            fh.truncate(40)

    def flip():
        data = bytearray(open(path, "rb").read())
        data[len(data) // 2] ^= 0x01
        open(path, "wb").write(bytes(data))

    def symlink():
        os.unlink(path)
        os.symlink(victim, path)

    cases = [
        (truncate, "is truncated"),
        (flip, "wrong secret, or the file was altered"),
        (lambda: os.chown(path, uid, -1), "must be owned by uid 0, not %d" % uid),
        (lambda: os.chmod(path, 0o644), "has mode 0644"),
        (symlink, "it is a symlink, which is never followed"),
    ]
    for damage, expected in cases:
        restore()
        damage()
        result = site.run(PW)
        assert result.code == "AUTH_ERR", (expected, result.log)
        assert any("offline login of %s refused" % site.user in line and expected in line
                   for line in result.log), (expected, result.log)
        no_traceback(result)
    assert victim.read_bytes() == b"do not touch\n"
    assert os.path.islink(path)   # nothing replaced the planted link either
    restore()
    assert site.run(PW).ok


def test_planted_user_directory_symlink(pam_harness, system_user, realm, tmp_path):
    site = Site(realm, pam_harness, system_user)
    assert site.run(PW).ok
    udir = os.path.dirname(site.token_file())
    moved = tmp_path / "moved"
    os.rename(udir, moved)
    os.symlink(moved, udir)
    before = sorted(os.listdir(moved))
    result = site.run(PW)          # online again: the cache write must not follow the link
    no_traceback(result)
    assert result.code == "AUTH_ERR"   # the pin cannot be checked: fail closed
    assert any("symlink" in line for line in result.log)
    realm.stop()
    result = site.run(PW)
    assert result.code == "AUTH_ERR" and any("symlink" in line for line in result.log)
    no_traceback(result)
    assert sorted(os.listdir(moved)) == before


def test_one_time_code_offline_and_concurrent_logins(pam_harness, system_user, realm):
    site = Site(realm, pam_harness, system_user, second_factor="totp")
    fresh_step()
    assert site.run(site.typed()).ok
    realm.stop()
    typed = site.typed(time.time() + 30)   # the next step: valid offline, not used yet
    with ThreadPoolExecutor(5) as pool:
        codes = [r.code for r in pool.map(site.run, [typed] * 5)]
    assert codes.count("SUCCESS") == 1, codes
    assert site.run(typed).code == "AUTH_ERR"      # and stays used


def test_offline_prompt_asks_for_the_code_too(pam_harness, system_user, realm):
    """With the server down, the prompt still says what to type: the cache has a code."""
    site = Site(realm, pam_harness, system_user, second_factor="totp")
    fresh_step()
    first = site.run(site.typed())
    assert first.ok and "Password+OTP:" in first.output
    realm.stop()
    result = site.run(site.typed(time.time() + 30))
    assert result.ok and "Password+OTP:" in result.output


def test_concurrent_wrong_offline_logins_all_counted(pam_harness, system_user, realm):
    site = Site(realm, pam_harness, system_user)
    assert site.run(PW).ok
    realm.stop()
    with ThreadPoolExecutor(3) as pool:
        codes = [r.code for r in pool.map(site.run, [BAD] * 3)]
    assert codes == ["AUTH_ERR"] * 3
    assert site.cache.failures(site.user)[0] == 3   # no lost update of the counter


def test_concurrent_online_logins_recache_cleanly(pam_harness, system_user, realm):
    site = Site(realm, pam_harness, system_user)
    with ThreadPoolExecutor(4) as pool:
        codes = [r.code for r in pool.map(site.run, [PW] * 4)]
    assert codes == ["SUCCESS"] * 4
    left = set(os.listdir(os.path.dirname(site.token_file())))
    assert left - {"failures"} == {os.path.basename(site.token_file())}   # no temp file left
    realm.stop()
    assert site.run(PW).ok


def _key_block(site):
    from otpme_auth_offline.cache import parse
    header = parse(open(site.token_file(), "rb").read())[0]
    return header.version, header.salt, header.cache_public, header.wrapped


def test_online_relogin_derives_no_key_until_the_password_changes(pam_harness, system_user,
                                                                   realm):
    """Issue 11 through real libpam and the real server: a second online login reseals the
    cache (its key block stays byte for byte: no new salt, so no derivation); a password
    changed on the server makes the next online login derive a new key."""
    site = Site(realm, pam_harness, system_user)
    assert site.run(PW).ok
    first = _key_block(site)
    from otpme_auth_offline.cache import VERSION
    assert first[0] == VERSION
    for _ in range(2):
        result = site.run(PW)
        assert result.ok, result.log
        assert _key_block(site) == first
    new_pw = "another long passphrase 42"
    realm.admin("token", "password", site.token, "-", stdin=new_pw + "\n")
    assert site.run(new_pw).ok
    assert _key_block(site)[1:] != first[1:]
    realm.stop()
    assert site.run(new_pw).ok
    old = site.run(PW)
    assert old.code == "AUTH_ERR"
    no_traceback(old)
