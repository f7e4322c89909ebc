"""A password token whose TOTP second factor has a PIN (seed 001 section 27), through
real libpam: typed password+PIN+code; the cache is keyed from password+PIN (the
text minus the last otp_len digits), so offline a wrong PIN cannot unlock it."""

import os
import time

from otpme_auth.otp.base32 import b32decode
from otpme_auth.otp.hotp import totp

from offline_testlib import FAST_KDF, PW


def test_password_pin_code_online_then_offline(pam_harness, system_user, realm):
    user = system_user()
    secret, pin = realm.add_user(user, PW, second_factor="totp", offline=True, pin=True)
    assert len(pin) == 4 and pin.isdigit()
    jotp = realm.add_host("h1", tokens=["%s/pass" % user])
    realm.start()
    conf = realm.join("h1", jotp)
    cache_dir = os.path.join(pam_harness.dir, "offline")
    pam_harness.service("login", pam_harness.line(
        "try_first_pass host_config=%s connect_timeout=1 cache_login_tokens offline_cache_dir=%s %s"
        % (conf, cache_dir, FAST_KDF)))
    wrong_pin = "%04d" % ((int(pin) + 1) % 10000)

    def code(at):
        return totp(b32decode(secret), at)

    if time.time() % 30 > 22:   # codes of this step and the next stay valid for the test
        time.sleep(30 - time.time() % 30 + 0.1)
    now = time.time()
    first = pam_harness.run("login", user, answers=[PW + pin + code(now)])
    assert first.ok, first.log
    assert "Password+PIN+OTP:" in first.output   # the server's prompt
    assert os.listdir(os.path.join(cache_dir, user))
    # Online, a wrong PIN with a right code is refused by the server.
    assert pam_harness.run("login", user, answers=[PW + wrong_pin + code(now + 30)]).code == "AUTH_ERR"

    realm.stop()
    # Offline: the wrong PIN does not open the cache (it is part of the key) ...
    refused = pam_harness.run("login", user, answers=[PW + wrong_pin + code(now + 30)])
    assert refused.code == "AUTH_ERR"
    assert any("offline login of %s refused" % user in line for line in refused.log)
    # ... nor the password without the PIN, and password+PIN+next code logs in.
    assert pam_harness.run("login", user, answers=[PW + code(now + 30)]).code == "AUTH_ERR"
    ok = pam_harness.run("login", user, answers=[PW + pin + code(now + 30)])
    assert ok.ok, ok.log
    assert "Password+PIN+OTP:" in ok.output   # the cache words the prompt with no server
    assert any("authenticated %s offline" % user in line for line in ok.log)
    for line in pam_harness.read_log():
        assert PW not in line and pin + code(now + 30) not in line
