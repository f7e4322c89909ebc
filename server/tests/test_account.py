"""POST /v1/account: the account phase of a session on a host (issue 9 point 2)."""

import datetime
import json

from srvkit import adm_ok

from test_lockout import Realm

PW = "the right password 1"


def _not_today():
    day = (datetime.datetime.now(datetime.timezone.utc).weekday() + 3) % 7
    return ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][day]


def _answer(h, user):
    status, body = h.post("/v1/account", {"user": user})
    assert status == 200, body
    return body


def test_account_states(tmp_path):
    r = Realm(tmp_path, "sqlite", 1)
    try:
        r.adm("user", "add", "bob", "--no-login-token")
        r.adm("token", "add", "--type", "password", "bob/pass", "-", stdin=PW + "\n")
        h = r.start(unlimited=False)
        # Not assigned to this host (and the host is not unlimited): no token may log in here.
        assert _answer(h, "bob") == {"status": "refused", "reason": "host_not_allowed",
                                     "message": "Login failed: you may not log in on this host."}
        r.adm("host", "add_token", "h1", "bob/pass")
        assert _answer(h, "bob") == {"status": "ok", "user": "bob"}
        assert _answer(h, "nobody-here") == {"status": "unknown", "user": "nobody-here"}
        r.adm("policy", "add", "office", "--type", "logintimes", "--times",
              "%s 00:00-23:59" % _not_today())
        r.adm("user", "add_policy", "bob", "office")
        assert _answer(h, "bob")["reason"] == "outside_login_times"
        r.adm("user", "remove_policy", "bob", "office")
        r.adm("token", "disable", "bob/pass")
        assert _answer(h, "bob")["reason"] == "host_not_allowed"
        r.adm("token", "enable", "bob/pass")
        r.adm("user", "disable", "bob")
        assert _answer(h, "bob")["reason"] == "user_disabled"
        r.adm("user", "enable", "bob")
        assert _answer(h, "bob")["status"] == "ok"
        # Strict like every endpoint: a bad name or an unknown field is a 400, never a 5xx.
        assert h.post("/v1/account", {"user": "bad name"})[0] == 400
        assert h.post("/v1/account", {"user": "bob", "x": 1})[0] == 400
    finally:
        r.stop()
