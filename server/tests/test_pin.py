"""OTP token PINs (seed 001 sections 6 and 27): shown once, typed PIN+code (or
password+PIN+code), checked with the code, a wrong PIN never consumes the code."""

import os
import time

import pytest

from otpme_auth_server import otp
from otpme_auth_server.crypto import SecretBox

from srvkit import adm, adm_ok, b32, join, shown_jotp, shown_pin, shown_secret


@pytest.fixture
def host(realm_dir, server, tmp_path):
    d = realm_dir
    h = join(server.port, d, "h1", shown_jotp(adm_ok(d, "host", "add", "h1")), str(tmp_path / "h"))
    adm_ok(d, "host", "unlimit_logins", "h1")
    adm_ok(d, "accessgroup", "max_fail", "LOGIN", "0")
    yield h
    h.close()


def status(resp):
    code, body = resp
    assert code == 200, body
    return body["status"] if body["status"] == "ok" else body["reason"]


def test_pin_shown_once_never_again(realm_dir):
    d = realm_dir
    out = adm_ok(d, "user", "add", "dora")  # the default login token has a PIN too
    assert "dora/login" in out and len(shown_pin(out)) == 4
    out = adm_ok(d, "token", "add", "--type", "totp", "--pin-len", "10", "dora/phone")
    pin = shown_pin(out)
    assert len(pin) == 10 and pin.isdigit()
    later = (adm_ok(d, "token", "show", "dora/phone") + adm_ok(d, "token", "list", "dora")
             + adm_ok(d, "user", "show", "dora") + adm_ok(d, "token", "show", "dora/login"))
    assert pin not in later and "pin_hash" not in later and "argon2" not in later
    assert "pin_enabled: True" in later and "pin_len: 10" in later
    # --no-pin, and PINs only for OTP tokens.
    assert "PIN" not in adm_ok(d, "token", "add", "--type", "hotp", "--no-pin", "dora/nopin")
    assert "PIN" not in adm_ok(d, "user", "add", "--no-pin", "erik")
    assert "PIN" not in adm_ok(d, "token", "add", "--type", "password", "dora/pw")
    assert adm(d, "token", "pin", "dora/pw")[0] == 2
    assert adm(d, "token", "enable_pin", "dora/nopin")[0] == 2  # none set yet
    assert adm(d, "token", "pin", "dora/phone", "1234")[0] == 2  # never on argv
    for bad in ("12a4", "123", "1" * 13, ""):
        assert adm(d, "token", "pin", "dora/phone", "-", stdin=bad + "\n")[0] == 2
    assert adm(d, "token", "add", "--type", "totp", "--pin-len", "3", "dora/short")[0] == 2


@pytest.mark.parametrize("ttype", ["totp", "hotp"])
def test_pin_plus_code(realm_dir, host, server, ttype):
    d = realm_dir
    adm_ok(d, "user", "add", "--no-login-token", "carol")
    out = adm_ok(d, "token", "add", "--type", ttype, "--pin-len", "6", f"carol/{ttype}")
    secret, pin = b32(shown_secret(out)), shown_pin(out)
    _, pre = host.preauth("carol")
    assert pre["methods"] == [{"type": ttype, "password_required": False, "otp_len": 6,
                               "second_factor": None, "pin_required": True, "prompt": "PIN+OTP: "}]
    n = 0

    def code():
        return otp.totp(secret, time.time()) if ttype == "totp" else otp.hotp(secret, n)

    wrong = f"{(int(pin) + 1) % 10**6:06d}"
    assert status(host.auth("carol", code())) == "wrong_credentials"  # bare code: PIN missing
    assert status(host.auth("carol", wrong + code())) == "wrong_credentials"
    # The right code with a wrong PIN was not consumed: it still logs in with the PIN.
    assert status(host.auth("carol", pin + code())) == "ok"
    assert status(host.auth("carol", pin + code())) == "wrong_credentials"  # replay
    assert status(host.auth("carol", pin + "000000")) == "wrong_credentials"
    log = server.logtext()
    assert "login refused user=carol" in log and pin not in log and wrong not in log


def test_no_pin_disable_enable_and_change(realm_dir, host, server):
    d = realm_dir
    adm_ok(d, "user", "add", "--no-login-token", "bob")
    out = adm_ok(d, "token", "add", "--type", "hotp", "bob/hotp")
    secret, pin = b32(shown_secret(out)), shown_pin(out)
    assert status(host.auth("bob", pin + otp.hotp(secret, 0))) == "ok"
    # No PIN: the bare code, as a token added with --no-pin.
    adm_ok(d, "token", "disable_pin", "bob/hotp")
    _, pre = host.preauth("bob")
    assert pre["methods"][0]["prompt"] == "OTP: " and pre["methods"][0]["pin_required"] is False
    assert status(host.auth("bob", pin + otp.hotp(secret, 1))) == "wrong_credentials"
    assert status(host.auth("bob", otp.hotp(secret, 1))) == "ok"
    adm_ok(d, "token", "enable_pin", "bob/hotp")
    assert status(host.auth("bob", otp.hotp(secret, 2))) == "wrong_credentials"
    assert status(host.auth("bob", pin + otp.hotp(secret, 2))) == "ok"
    # A new PIN, generated and shown once.
    out = adm_ok(d, "token", "pin", "--pin-len", "8", "bob/hotp")
    new = shown_pin(out)
    assert len(new) == 8 and out.count(new) == 1
    assert status(host.auth("bob", pin + otp.hotp(secret, 3))) == "wrong_credentials"
    assert status(host.auth("bob", new + otp.hotp(secret, 3))) == "ok"
    # A token without PIN next to one with: each takes its own form.
    s2 = b32(shown_secret(adm_ok(d, "token", "add", "--type", "totp", "--no-pin", "bob/totp")))
    _, pre = host.preauth("bob")
    assert sorted(m["prompt"] for m in pre["methods"]) == ["OTP: ", "PIN+OTP: "]
    assert status(host.auth("bob", otp.totp(s2, time.time()))) == "ok"
    assert new not in server.logtext()


def test_password_pin_otp(realm_dir, host, server):
    d = realm_dir
    pw = "tr0ub4dor&3"
    adm_ok(d, "user", "add", "--no-login-token", "joe")
    adm_ok(d, "token", "add", "--type", "password", "joe/pass", "-", stdin=pw + "\n")
    out = adm_ok(d, "token", "add", "--type", "totp", "joe/totp")
    secret, pin = b32(shown_secret(out)), shown_pin(out)
    adm_ok(d, "token", "2f_token", "joe/pass", "totp")
    adm_ok(d, "token", "enable_2f", "joe/pass")
    adm_ok(d, "host", "limit_logins", "h1")
    adm_ok(d, "host", "add_token", "h1", "joe/pass")
    _, pre = host.preauth("joe")
    assert pre["methods"] == [{"type": "password", "password_required": True, "otp_len": 6,
                               "second_factor": "totp", "pin_required": True,
                               "prompt": "Password+PIN+OTP: "}]
    code = otp.totp(secret, time.time())
    wrong = f"{(int(pin) + 1) % 10000:04d}"
    assert status(host.auth("joe", pw + code)) == "wrong_credentials"
    assert status(host.auth("joe", pw + wrong + code)) == "wrong_credentials"
    assert status(host.auth("joe", "x" + pw + pin + code)) == "wrong_credentials"
    # The bare PIN+code of the TOTP token is not allowed on this host: to the host,
    # they are wrong credentials (it learns nothing about a token it may not use).
    assert status(host.auth("joe", pin + code)) == "wrong_credentials"
    body = host.auth("joe", pw + pin + code)[1]
    assert body["status"] == "ok" and body["token"] == "joe/pass"
    assert status(host.auth("joe", pw + pin + code)) == "wrong_credentials"  # replay
    # The second factor without its PIN: password+code again.
    adm_ok(d, "token", "disable_pin", "joe/totp")
    assert host.preauth("joe")[1]["methods"][0]["prompt"] == "Password+OTP: "
    assert status(host.auth("joe", pw + otp.totp(secret, time.time() + 30))) == "ok"
    log = server.logtext()
    assert pw not in log and pin + code not in log


def test_unknown_user_preauth_unchanged(realm_dir, host):
    d = realm_dir
    adm_ok(d, "user", "add", "--no-login-token", "plain")
    adm_ok(d, "token", "add", "--type", "password", "plain/pw")
    _, known = host.preauth("plain")
    _, unknown = host.preauth("nobody-here")
    assert known["methods"] == unknown["methods"] == [
        {"type": "password", "password_required": True, "otp_len": 0, "second_factor": None,
         "pin_required": False, "prompt": "Password: "}]


def test_pin_hash_bound_to_token_and_key():
    box, other = SecretBox(os.urandom(32)), SecretBox(os.urandom(32))
    assert box.pin_input("a/totp", "1234") != box.pin_input("b/totp", "1234")
    assert box.pin_input("a/totp", "1234") != other.pin_input("a/totp", "1234")
    assert "1234" not in box.pin_input("a/totp", "1234")
