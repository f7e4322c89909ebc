"""Hosts: join, disable, remove and re-add; several worker processes; second factors."""

import signal
import time

import pytest

from otpme_auth_server import otp

from srvkit import (ServerProc, adm, adm_ok, b32, free_port, join, make_realm, shown_jotp,
                    shown_pin, shown_secret)


def test_host_lifecycle(realm_dir, server, tmp_path):
    d = realm_dir
    jotp = shown_jotp(adm_ok(d, "host", "add", "h1"))
    h1 = join(server.port, d, "h1", jotp, str(tmp_path / "a"))
    assert h1.preauth("x")[0] == 200
    adm_ok(d, "host", "disable", "h1")
    status, body = h1.preauth("x")
    assert status == 403 and body["error"] == "host_disabled"
    adm_ok(d, "host", "enable", "h1")
    assert h1.preauth("x")[0] == 200
    # Removed and added again: the old certificate is refused until the host joins again.
    adm_ok(d, "host", "del", "h1")
    jotp2 = shown_jotp(adm_ok(d, "host", "add", "h1"))
    status, body = h1.preauth("x")
    assert status == 403 and body["error"] == "host_unknown"
    h1b = join(server.port, d, "h1", jotp2, str(tmp_path / "b"))
    assert h1b.preauth("x")[0] == 200
    assert h1.preauth("x")[0] == 403
    # A JOTP of one host does not join another name.
    jotp3 = shown_jotp(adm_ok(d, "host", "add", "h2"))
    with pytest.raises(AssertionError):
        join(server.port, d, "h3", jotp3, str(tmp_path / "c"))
    for c in (h1, h1b):
        c.close()


def test_second_factor_rules(realm_dir, server, tmp_path):
    d = realm_dir
    h = join(server.port, d, "h1", shown_jotp(adm_ok(d, "host", "add", "h1")), str(tmp_path / "h"))
    adm_ok(d, "host", "unlimit_logins", "h1")
    out = adm_ok(d, "user", "add", "bob")  # default login token: TOTP, shown once
    assert "otpauth://totp/" in out and "bob/login" in out
    pin = shown_pin(out)  # and its PIN (seed 001 section 6)
    adm_ok(d, "token", "add", "--type", "password", "bob/pw", "-", stdin="pw-of-bob\n")
    assert adm(d, "token", "enable_2f", "bob/pw")[0] == 2  # no second factor set yet
    assert adm(d, "token", "2f_token", "bob/pw", "pw")[0] == 2  # must be totp/hotp
    adm_ok(d, "token", "2f_token", "bob/pw", "login")
    adm_ok(d, "token", "enable_2f", "bob/pw")
    secret = b32(shown_secret(out))
    assert adm(d, "token", "del", "bob/login")[0] == 2  # still the second factor of bob/pw
    adm_ok(d, "-f", "token", "disable", "bob/login")
    code = otp.totp(secret, time.time())
    assert h.auth("bob", "pw-of-bob" + pin + code)[1]["reason"] == "token_disabled"
    adm_ok(d, "-f", "token", "enable", "bob/login")
    body = h.auth("bob", "pw-of-bob" + pin + code)[1]
    assert body["status"] == "ok" and body["token"] == "bob/pw"
    h.close()


def test_workers_share_a_port(tmp_path):
    port = free_port()
    d = make_realm(tmp_path, "sqlite", port)
    jotp = shown_jotp(adm_ok(d, "host", "add", "h1"))
    srv = ServerProc(d, port, workers=2)
    try:
        h = join(port, d, "h1", jotp, str(tmp_path / "h"))
        pids = set()
        for _ in range(20):
            h.close()  # new connections: the kernel spreads them over the workers
            assert h.preauth("x")[0] == 200
        time.sleep(0.2)
        for line in srv.logtext().splitlines():
            if "serving realm" in line:
                pids.add(line.split("pid ")[1].split(",")[0])
        assert len(pids) == 2
    finally:
        srv.proc.send_signal(signal.SIGTERM)
        srv.proc.wait(10)
        srv.stop()
    assert srv.proc.returncode == 0
