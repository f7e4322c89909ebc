"""One-time codes are one-time: 50 concurrent logins with one code, one success."""

import time

import pytest

from otpme_auth_server import otp

from srvkit import ServerProc, adm_ok, b32, free_port, host_clients, join, make_realm, race, shown_jotp, shown_secret

N = 50


@pytest.mark.slow
def test_same_code_concurrently_two_processes(tmp_path, backend):
    d = make_realm(tmp_path, backend)
    adm_ok(d, "accessgroup", "max_fail", "LOGIN", "0")  # the 49 losers must not block the winner
    adm_ok(d, "user", "add", "--no-login-token", "bob")
    secret = b32(shown_secret(adm_ok(d, "token", "add", "--type", "totp", "--no-pin", "bob/totp")))
    jotp = shown_jotp(adm_ok(d, "host", "add", "h1"))
    adm_ok(d, "host", "unlimit_logins", "h1")
    ports = [free_port(), free_port()]
    servers = [ServerProc(d, p) for p in ports]
    try:
        first = join(ports[0], d, "h1", jotp, str(tmp_path / "h1"))
        clients = host_clients(N, ports, first, str(tmp_path / "h1"), "h1")
        # Not at the very end of a step, so the code stays valid during the race.
        while time.time() % 30 > 25:
            time.sleep(0.5)
        code = otp.totp(secret, time.time())
        results = race(clients, [lambda c: c.auth("bob", code)] * N)
        statuses = [r[0] for r in results]
        assert statuses == [200] * N, results
        oks = [r[1] for r in results if r[1]["status"] == "ok"]
        assert len(oks) == 1, [r[1] for r in results]
        assert {r[1]["reason"] for r in results if r[1]["status"] != "ok"} == {"wrong_credentials"}
        # Both processes answered.
        assert all(s.logtext().count("login ") > 0 for s in servers)
        for c in clients:
            c.close()
    finally:
        for s in servers:
            s.stop()
