"""Seed 001 sections 6-13 (and 19, 21, 27) through the real server over mutual TLS,
on SQLite and on a real PostgreSQL."""

import datetime
import os
import time

from otpme_auth_server import otp

from srvkit import Client, adm, adm_ok, b32, join, shown_jotp, shown_pin, shown_secret

PW = "correct horse battery"


def other_day_policy() -> str:
    """A login-time spec that excludes the current day (the server runs in UTC)."""
    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    tomorrow = (datetime.datetime.now(datetime.timezone.utc).weekday() + 1) % 7
    return f"{days[tomorrow]} 00:00-24:00"


def refused(resp, reason):
    status, body = resp
    assert status == 200, body
    assert body["status"] == "refused", body
    assert body["reason"] == reason, body
    assert body["message"]


def ok(resp):
    status, body = resp
    assert status == 200, body
    assert body["status"] == "ok", body
    return body


def test_walkthrough(realm_dir, server, tmp_path):
    d = realm_dir
    # 19. Pre-create the host; it joins with the JOTP shown once.
    jotp = shown_jotp(adm_ok(d, "host", "add", "h1"))
    h1 = join(server.port, d, "h1", jotp, str(tmp_path / "h1"))
    # The JOTP is single-use.
    anon = Client(server.port, os.path.join(d, "ca.pem"))
    status, body = anon.post("/v1/join", {"host": "h1", "jotp": jotp, "csr": open(h1.ca_pem).read()})
    assert status in (400, 403) and body["status"] == "error"

    # 6./7. A user and a password token (password from stdin, never argv).
    adm_ok(d, "user", "add", "--no-login-token", "alice")
    adm_ok(d, "token", "add", "--type", "password", "alice/pass", "-", stdin=PW + "\n")
    assert "alice/pass" in adm_ok(d, "user", "show", "alice")

    # Pre-auth of a known user with a password token equals that of an unknown user.
    s1, known = h1.preauth("alice")
    s2, unknown = h1.preauth("mallory")
    assert s1 == s2 == 200
    assert known["methods"] == unknown["methods"]
    assert known["methods"][0]["password_required"] is True

    # Host login restriction: the token is not assigned to h1 yet, so to h1 the right
    # password is as wrong as any other (no oracle, and it counts as a failed login).
    refused(h1.auth("alice", PW), "wrong_credentials")
    refused(h1.auth("alice", "wrong"), "wrong_credentials")
    refused(h1.auth("mallory", PW), "wrong_credentials")

    # 8. Grant directly, then through a role, then through a nested role.
    adm_ok(d, "host", "add_token", "h1", "alice/pass")
    body = ok(h1.auth("alice", PW))
    assert body["token"] == "alice/pass" and body["session"]["id"] and body["offline"] == []
    adm_ok(d, "host", "remove_token", "h1", "alice/pass")
    refused(h1.auth("alice", PW), "wrong_credentials")
    adm_ok(d, "role", "add", "wlan-user")
    adm_ok(d, "role", "add_token", "wlan-user", "alice/pass")
    adm_ok(d, "role", "add", "staff")
    adm_ok(d, "role", "add_role", "staff", "wlan-user")
    adm_ok(d, "host", "add_role", "h1", "staff")
    ok(h1.auth("alice", PW))
    assert adm(d, "role", "add_role", "wlan-user", "staff")[0] == 2  # cycle refused

    # 10. Login times, via the access group and via the user.
    adm_ok(d, "policy", "add", "other_day", "--type", "logintimes", "--times", other_day_policy())
    adm_ok(d, "accessgroup", "add_policy", "LOGIN", "other_day")
    refused(h1.auth("alice", PW), "outside_login_times")
    adm_ok(d, "accessgroup", "remove_policy", "LOGIN", "other_day")
    adm_ok(d, "user", "add_policy", "alice", "other_day")
    refused(h1.auth("alice", PW), "outside_login_times")
    adm_ok(d, "user", "remove_policy", "alice", "other_day")
    adm_ok(d, "user", "add_policy", "alice", "workhours_login")  # built-in exists
    adm_ok(d, "user", "remove_policy", "alice", "workhours_login")
    ok(h1.auth("alice", PW))

    # 11. Disable / enable user and token.
    adm_ok(d, "-f", "user", "disable", "alice")
    refused(h1.auth("alice", PW), "user_disabled")
    refused(h1.auth("alice", "wrong"), "wrong_credentials")  # no state oracle without the password
    adm_ok(d, "-f", "user", "enable", "alice")
    adm_ok(d, "-f", "token", "disable", "alice/pass")
    refused(h1.auth("alice", PW), "token_disabled")
    adm_ok(d, "-f", "token", "enable", "alice/pass")
    ok(h1.auth("alice", PW))

    # 12. Login failure limits, manual unblock, automatic unblock.
    adm_ok(d, "accessgroup", "max_fail", "LOGIN", "3")
    for _ in range(3):
        refused(h1.auth("alice", "nope"), "wrong_credentials")
    refused(h1.auth("alice", PW), "blocked")
    assert "BLOCKED" in adm_ok(d, "user", "show", "alice")
    adm_ok(d, "user", "unblock", "alice", "LOGIN")
    ok(h1.auth("alice", PW))
    adm_ok(d, "accessgroup", "max_fail_reset", "LOGIN", "1s")
    for _ in range(3):
        refused(h1.auth("alice", "nope"), "wrong_credentials")
    refused(h1.auth("alice", PW), "blocked")
    time.sleep(1.2)
    ok(h1.auth("alice", PW))
    adm_ok(d, "accessgroup", "max_fail_reset", "LOGIN", "0")

    # 13. Auto disable (+1s here so the test does not wait a minute) and its removal.
    adm_ok(d, "user", "auto_disable", "alice", "+1s")
    time.sleep(1.2)
    refused(h1.auth("alice", PW), "auto_disabled")
    assert "auto_disable reached" in adm_ok(d, "user", "show", "alice")
    adm_ok(d, "user", "auto_disable", "alice", "0")
    ok(h1.auth("alice", PW))

    # 27. TOTP as second factor of the password token, offline and session keep: the TOTP
    # token's PIN is shown once at add, and the user types password+PIN+OTP.
    out = adm_ok(d, "token", "add", "--type", "totp", "alice/totp")
    secret, pin = shown_secret(out), shown_pin(out)
    assert len(pin) == 4 and pin.isdigit()
    adm_ok(d, "token", "2f_token", "alice/pass", "totp")
    adm_ok(d, "token", "enable_2f", "alice/pass")
    adm_ok(d, "token", "enable_offline", "alice/pass")
    adm_ok(d, "token", "enable_session_keep", "alice/pass")
    adm_ok(d, "user", "enable_auto_mount", "alice")
    adm_ok(d, "share", "add", "testshare", "--type", "nfs", "--source", "nfs1:/export/%u")
    adm_ok(d, "share", "add_node", "testshare", "h1")
    adm_ok(d, "user", "add_share", "alice", "testshare")
    _, pre = h1.preauth("alice")
    assert pre["methods"] == [{"type": "password", "password_required": True, "otp_len": 6,
                               "second_factor": "totp", "pin_required": True,
                               "prompt": "Password+PIN+OTP: "}]
    refused(h1.auth("alice", PW), "wrong_credentials")  # the code is now required
    code = otp.totp(b32(secret), time.time())
    refused(h1.auth("alice", PW + code), "wrong_credentials")  # and the PIN
    wrong_pin = f"{(int(pin) + 1) % 10000:04d}"
    refused(h1.auth("alice", PW + wrong_pin + code), "wrong_credentials")  # code not consumed
    # A wrong PIN counts as a failed login like a wrong password: the third blocks (max_fail 3).
    refused(h1.auth("alice", PW + pin + code), "blocked")
    adm_ok(d, "user", "unblock", "alice")
    body = ok(h1.auth("alice", PW + pin + code))
    assert body["session"]["keep"] is True
    assert [s["name"] for s in body["shares"]] == ["testshare"] and body["auto_mount"] is True
    assert "alice" in body["greeting"]
    assert body["password_policy"]["name"] == "password_strength"
    (off,) = body["offline"]
    assert off["token"] == "alice/pass" and off["verify"] == "password" and off["session_keep"]
    assert off["second_factor"]["secret"] == secret and off["second_factor"]["period"] == 30
    assert off["expiry"] > time.time() and off["unused_expiry"] > 0
    assert "hash" not in str(body)
    # The same code again is a replay.
    refused(h1.auth("alice", PW + pin + code), "wrong_credentials")
    # A new PIN from stdin (never argv); the old one stops working.
    new_pin = "80417263"
    adm_ok(d, "token", "pin", "alice/totp", "-", stdin=new_pin + "\n")
    _, pre = h1.preauth("alice")
    assert pre["methods"][0]["prompt"] == "Password+PIN+OTP: "
    code2 = otp.totp(b32(secret), time.time() + 30)
    refused(h1.auth("alice", PW + pin + code2), "wrong_credentials")
    ok(h1.auth("alice", PW + new_pin + code2))
    # Neither PIN is ever shown again.
    shown = adm_ok(d, "token", "show", "alice/totp") + adm_ok(d, "token", "list", "alice")
    assert "pin_enabled: True" in shown and new_pin not in shown and "argon2" not in shown

    # 19. Unlimited logins on a second host.
    h2 = join(server.port, d, "h2", shown_jotp(adm_ok(d, "host", "add", "h2")), str(tmp_path / "h2"))
    adm_ok(d, "token", "disable_2f", "alice/pass")
    refused(h2.auth("alice", PW), "wrong_credentials")
    adm_ok(d, "host", "unlimit_logins", "h2")
    ok(h2.auth("alice", PW))

    # A removed host is refused with a clear error.
    adm_ok(d, "host", "remove", "h1")
    status, body = h1.auth("alice", PW)
    assert status == 403 and body["error"] == "host_unknown" and "h1" in body["message"]

    # Nothing secret in the log.
    log = server.logtext()
    assert "login refused user=alice" in log and "reason=blocked" in log
    for s in (PW, secret, code, code2, jotp, new_pin, pin + code, wrong_pin + code, new_pin + code2):
        assert s not in log
