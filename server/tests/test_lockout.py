"""The failure limit is exact: at most ``max_fail`` wrong guesses are ever checked.

Every race runs 40 or more parallel attempts on SQLite with one and two server
processes and on PostgreSQL with two (issue 8: concurrent guesses walked
through the limit; a success wiped the failures of concurrent attempts).
"""

import datetime
import json
import os
import re
import threading
import time

import pytest

from otpme_auth_server import otp, realm as realm_ops
from otpme_auth_server.config import load as load_config
from otpme_auth_server.store import Store

from srvkit import (ServerProc, adm, adm_ok, b32, free_port, host_clients, join, make_realm, race,
                    shown_jotp, shown_pin, shown_secret)

PW = "the right password 1"
SETUPS = [("sqlite", 1), ("sqlite", 2), ("postgresql", 2)]


class Realm:
    """A realm on ``backend`` served by ``workers`` processes, with host h1 joined."""

    def __init__(self, tmp_path, db, workers, argon2=None):
        self.dir = make_realm(tmp_path, db)
        if argon2:
            path = os.path.join(self.dir, "server.json")
            with open(path) as f:
                cfg = json.load(f)
            cfg["argon2"] = argon2
            with open(path, "w") as f:
                json.dump(cfg, f)
        self.tmp = tmp_path
        self.workers = workers
        self.servers = []

    def adm(self, *args, stdin=None):
        return adm_ok(self.dir, *args, stdin=stdin)

    def start(self, host="h1", unlimited=True):
        jotp = shown_jotp(self.adm("host", "add", host))
        if unlimited:
            self.adm("host", "unlimit_logins", host)
        self.port = free_port()
        self.servers.append(ServerProc(self.dir, self.port, workers=self.workers))
        self.workdir = str(self.tmp / host)
        self.first = join(self.port, self.dir, host, jotp, self.workdir)
        return self.first

    def clients(self, n, host="h1"):
        return host_clients(n, [self.port], self.first, self.workdir, host)

    def fails(self, user="bob", group="LOGIN"):
        """The failed-login count ``user show`` reports (0 when it reports none)."""
        m = re.search(rf"failed logins in {group}: (\d+)", self.adm("user", "show", user))
        return int(m.group(1)) if m else 0

    def set_token(self, name, **changes):
        cfg = load_config(self.dir)
        with Store(cfg.db).session() as c:
            realm_ops.token_set(c, name, **changes)

    def stop(self):
        for s in self.servers:
            s.stop()


@pytest.fixture(params=SETUPS, ids=[f"{b}-{w}workers" for b, w in SETUPS])
def lockrealm(request, tmp_path):
    backend, workers = request.param
    db = "sqlite" if backend == "sqlite" else request.getfixturevalue("pg").new_db()
    r = Realm(tmp_path, db, workers)
    yield r
    r.stop()


def reasons(results):
    out = {}
    for status, body in results:
        assert status == 200, body  # never a 5xx: clients would read it as "server down"
        key = "ok" if body["status"] == "ok" else body["reason"]
        out[key] = out.get(key, 0) + 1
    return out


def add_bob_with_password(r):
    r.adm("user", "add", "--no-login-token", "bob")
    r.adm("token", "add", "--type", "password", "bob/pass", "-", stdin=PW + "\n")


def test_concurrent_wrong_passwords_are_bounded_by_max_fail(lockrealm):
    r = lockrealm
    add_bob_with_password(r)
    r.start()
    clients = r.clients(40)
    results = race(clients, [lambda c, i=i: c.auth("bob", f"wrong {i}") for i in range(40)])
    # Exactly max_fail (5) guesses were checked; the other 35 were refused unchecked.
    assert reasons(results) == {"wrong_credentials": 5, "blocked": 35}
    assert r.fails() == 5
    # The right password, sent after them, is not even checked.
    assert reasons([clients[0].auth("bob", PW)]) == {"blocked": 1}
    assert "(BLOCKED)" in r.adm("user", "show", "bob")
    r.adm("user", "unblock", "bob")
    assert reasons([clients[0].auth("bob", PW)]) == {"ok": 1}
    for c in clients:
        c.close()


def test_pin_guessing_with_one_observed_code_is_bounded(lockrealm):
    """100 PINs for one code seen over a shoulder: max_fail of them are checked."""
    r = lockrealm
    r.adm("user", "add", "--no-login-token", "bob")
    out = r.adm("token", "add", "--type", "totp", "bob/totp")
    secret, pin = b32(shown_secret(out)), shown_pin(out)
    r.start()
    while time.time() % 30 > 20:  # the code stays valid during the race
        time.sleep(0.5)
    code = otp.totp(secret, time.time())
    wrong = [f"{(int(pin) + k) % 10000:04d}" for k in range(1, 100)]
    clients = r.clients(len(wrong))
    results = race(clients, [lambda c, p=p: c.auth("bob", p + code) for p in wrong])
    assert reasons(results) == {"wrong_credentials": 5, "blocked": 94}
    # The right PIN now is not checked either...
    assert reasons([clients[0].auth("bob", pin + code)]) == {"blocked": 1}
    # ...and the code was not consumed by the wrong PINs: the user, unblocked, uses it.
    r.adm("user", "unblock", "bob")
    assert reasons([clients[0].auth("bob", pin + code)]) == {"ok": 1}
    for c in clients:
        c.close()


@pytest.mark.parametrize("setup", SETUPS, ids=[f"{b}-{w}workers" for b, w in SETUPS])
def test_a_success_keeps_the_failures_of_concurrent_attempts(tmp_path, setup, request):
    """A slow right login (argon2) while 40 wrong guesses are checked: they stay counted."""
    backend, workers = setup
    db = "sqlite" if backend == "sqlite" else request.getfixturevalue("pg").new_db()
    # A password check of about a second, so the 40 guesses all run during it.
    r = Realm(tmp_path, db, workers, argon2={"time_cost": 12, "memory_cost": 65536, "parallelism": 1})
    try:
        r.adm("accessgroup", "max_fail", "LOGIN", "100")
        add_bob_with_password(r)
        secret = b32(shown_secret(r.adm("token", "add", "--type", "totp", "--no-pin", "bob/totp")))
        r.adm("token", "2f_token", "bob/pass", "totp")
        r.adm("token", "enable_2f", "bob/pass")
        r.start()
        while time.time() % 30 > 20:
            time.sleep(0.5)
        slow = r.clients(1)[0]
        for i in range(2):  # two failures before: the success clears those
            assert reasons([slow.auth("bob", f"{i:06d}")]) == {"wrong_credentials": 1}
        answer = {}
        right = threading.Thread(target=lambda: answer.update(
            result=slow.auth("bob", PW + otp.totp(secret, time.time()))))
        right.start()
        time.sleep(0.3)  # the right login has begun its password check
        # Bare six-digit guesses cost no argon2 (the code is a second factor only).
        clients = r.clients(40)
        results = race(clients, [lambda c, i=i: c.auth("bob", f"{i:06d}") for i in range(40)])
        right.join(60)
        assert not right.is_alive()
        assert reasons(results) == {"wrong_credentials": 40}
        assert reasons([answer["result"]]) == {"ok": 1}
        # The success cleared its own slot and the two before it, nothing counted
        # after it began.
        assert r.fails() == 40
        for c in clients + [slow]:
            c.close()
    finally:
        r.stop()


def test_a_success_resets_the_failures_before_it(lockrealm):
    r = lockrealm
    add_bob_with_password(r)
    h = r.start()
    for i in range(4):
        assert reasons([h.auth("bob", f"wrong {i}")]) == {"wrong_credentials": 1}
    assert r.fails() == 4
    assert reasons([h.auth("bob", PW)]) == {"ok": 1}
    assert r.fails() == 0
    # A fresh budget: five more wrong guesses are checked before the block.
    assert reasons([h.auth("bob", f"again {i}") for i in range(6)]) == {"wrong_credentials": 5,
                                                                      "blocked": 1}


def test_max_fail_reset_starts_a_new_budget(tmp_path):
    r = Realm(tmp_path, "sqlite", 1)
    try:
        r.adm("accessgroup", "max_fail", "LOGIN", "2")
        r.adm("accessgroup", "max_fail_reset", "LOGIN", "1m")
        add_bob_with_password(r)
        h = r.start()
        assert reasons([h.auth("bob", "x"), h.auth("bob", "y"), h.auth("bob", PW)]) == {
            "wrong_credentials": 2, "blocked": 1}
        # A minute after the last checked attempt, the budget starts again.
        cfg = load_config(r.dir)
        with Store(cfg.db).session() as c:
            c.execute("UPDATE fail_state SET last_fail = last_fail - 61")
        assert reasons([h.auth("bob", PW)]) == {"ok": 1}
        assert r.fails() == 0
    finally:
        r.stop()


def test_a_token_not_on_the_host_is_no_oracle_and_counts(tmp_path):
    """The host restriction is decided before the credentials: the right password of a
    token the host may not use is a wrong credential there, and counts."""
    r = Realm(tmp_path, "sqlite", 1)
    try:
        add_bob_with_password(r)
        h = r.start(unlimited=False)
        results = [h.auth("bob", PW) for _ in range(6)]
        assert reasons(results) == {"wrong_credentials": 5, "blocked": 1}
        assert all(b["message"] == results[0][1]["message"] for _, b in results[:5])
        assert r.fails() == 5
        # Allowed now, but blocked until unblocked: the five counted.
        r.adm("host", "add_token", "h1", "bob/pass")
        assert reasons([h.auth("bob", PW)]) == {"blocked": 1}
        r.adm("user", "unblock", "bob")
        assert reasons([h.auth("bob", PW)]) == {"ok": 1}
    finally:
        r.stop()


def _bob_with_second_factor(r, pin=True):
    add_bob_with_password(r)
    out = r.adm("token", "add", "--type", "totp", "bob/totp", *(() if pin else ("--no-pin",)))
    r.adm("token", "2f_token", "bob/pass", "totp")
    r.adm("token", "enable_2f", "bob/pass")
    return b32(shown_secret(out)), (shown_pin(out) if pin else "")


def test_a_second_factor_does_not_log_in_alone(tmp_path):
    r = Realm(tmp_path, "sqlite", 1)
    try:
        secret, pin = _bob_with_second_factor(r)
        h = r.start(unlimited=True)  # every token of the user may log in here...
        _, pre = h.preauth("bob")
        # ...but pre-auth offers only the password token with its second factor.
        assert [m["prompt"] for m in pre["methods"]] == ["Password+PIN+OTP: "]
        code = otp.totp(secret, time.time())
        assert reasons([h.auth("bob", pin + code)]) == {"wrong_credentials": 1}
        assert r.fails() == 1
        # An admin may say so explicitly.
        out = r.adm("token", "enable_standalone", "bob/totp")
        assert "logs in alone" in out
        assert "PIN+OTP: " in [m["prompt"] for m in h.preauth("bob")[1]["methods"]]
        body = h.auth("bob", pin + code)[1]
        assert body["status"] == "ok" and body["token"] == "bob/totp"
        r.adm("token", "disable_standalone", "bob/totp")
        assert reasons([h.auth("bob", pin + otp.totp(secret, time.time() + 30))]) == {
            "wrong_credentials": 1}
        # With the second factor turned off on the password token, it is a token of its own.
        r.adm("token", "disable_2f", "bob/pass")
        assert reasons([h.auth("bob", pin + otp.totp(secret, time.time() + 30))]) == {"ok": 1}
    finally:
        r.stop()


def _not_today():
    day = (datetime.datetime.now(datetime.timezone.utc).weekday() + 3) % 7
    return ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][day]


@pytest.mark.parametrize("state", ["disable", "auto_disable", "logintimes"])
def test_every_token_check_applies_to_the_second_factor(tmp_path, state):
    r = Realm(tmp_path, "sqlite", 1)
    try:
        secret, pin = _bob_with_second_factor(r, pin=False)
        h = r.start()
        assert reasons([h.auth("bob", PW + otp.totp(secret, time.time() - 30))]) == {"ok": 1}
        if state == "disable":
            r.adm("token", "disable", "bob/totp")
            want = "token_disabled"
        elif state == "auto_disable":
            r.set_token("bob/totp", auto_disable=int(time.time()) - 1)
            want = "auto_disabled"
        else:
            r.adm("policy", "add", "office", "--type", "logintimes", "--times",
                  f"{_not_today()} 00:00-23:59")
            r.adm("token", "add_policy", "bob/totp", "office")
            want = "outside_login_times"
        body = h.auth("bob", PW + otp.totp(secret, time.time()))[1]
        assert body["status"] == "refused" and body["reason"] == want, body
        # Proved credentials refused for the token's state are not failed logins.
        assert r.fails() == 0
    finally:
        r.stop()


def test_the_default_access_group_cannot_be_deleted(tmp_path, capsys):
    """Hosts without an access group use it: deleting it would leave them without a limit."""
    d = make_realm(tmp_path)
    capsys.readouterr()
    assert adm(d, "accessgroup", "del", "LOGIN")[0] == 2
    err = capsys.readouterr().err
    assert "default access group" in err and "default_accessgroup" in err
    assert "LOGIN" in adm_ok(d, "accessgroup", "list")


def test_a_missing_access_group_fails_closed(tmp_path):
    """A host whose access group does not exist gets a new group's limit, not none."""
    r = Realm(tmp_path, "sqlite", 1)
    try:
        path = os.path.join(r.dir, "server.json")
        with open(path) as f:
            cfg = json.load(f)
        cfg["default_accessgroup"] = "GONE"
        with open(path, "w") as f:
            json.dump(cfg, f)
        add_bob_with_password(r)
        h = r.start()
        assert reasons([h.auth("bob", f"wrong {i}") for i in range(6)]) == {
            "wrong_credentials": 5, "blocked": 1}
        assert "access group GONE does not exist" in r.servers[0].logtext()
    finally:
        r.stop()


def test_more_parallel_right_logins_than_max_fail_all_succeed(lockrealm):
    """A user logging in on many hosts at once (an ansible run, a cluster ssh) holds more
    slots in flight than max_fail allows: the right logins wait for each other's slots
    instead of being refused as blocked; wrong ones still stop at max_fail."""
    r = lockrealm
    add_bob_with_password(r)
    r.adm("accessgroup", "max_fail", "LOGIN", "2")
    r.start()
    clients = r.clients(40)
    results = race(clients, [lambda c: c.auth("bob", PW)] * 40)
    assert reasons(results) == {"ok": 40}
    assert r.fails() == 0
    results = race(clients, [lambda c, i=i: c.auth("bob", f"wrong {i}") for i in range(40)])
    assert reasons(results) == {"wrong_credentials": 2, "blocked": 38}
    for c in clients:
        c.close()
