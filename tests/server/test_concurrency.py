"""One-time codes are one-time: 50 concurrent logins with one code, one success."""

import os
import threading
import time

import pytest

from otpme_auth.server import otp

from srvkit import Client, ServerProc, adm_ok, b32, free_port, join, make_realm, shown_jotp, shown_secret

N = 50


def _race(clients, user, code):
    barrier = threading.Barrier(len(clients))
    results = [None] * len(clients)

    def one(i):
        c = clients[i]
        c.preauth(user)  # open the TLS connection before the race
        barrier.wait()
        results[i] = c.auth(user, code)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


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
        clients = []
        for i in range(N):
            c = Client(ports[i % 2], first.ca_pem, "h1",
                                           os.path.join(str(tmp_path / "h1"), "h1.pem"),
                                           os.path.join(str(tmp_path / "h1"), "h1.key"))
            clients.append(c)
        # Not at the very end of a step, so the code stays valid during the race.
        while time.time() % 30 > 25:
            time.sleep(0.5)
        code = otp.totp(secret, time.time())
        results = _race(clients, "bob", code)
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
