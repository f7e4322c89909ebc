"""A code used offline is refused online later: the host reports it at its next contact.

Through real libpam (pam_wrapper + pam_python + pamtester) and a real server.
"""

import time

from test_offline_faults import Site, fresh_step


def test_a_code_used_offline_is_refused_online_later(pam_harness, system_user, realm):
    site = Site(realm, pam_harness, system_user, second_factor="totp")
    otp_token = "%s/totp" % site.user
    fresh_step()
    now = time.time()
    assert site.run(site.typed(now - 30)).ok  # online: caches the token
    realm.stop()
    offline = site.run(site.typed(now))
    assert offline.ok, offline.log
    assert any("offline" in line for line in offline.new)
    step = int(now) // 30
    assert site.cache.used_codes(site.user) == {otp_token: step}

    realm.start()
    # The same code online: the host reports it first (pre-auth), so it is a replay.
    replay = site.run(site.typed(now))
    assert not replay.ok
    assert "offline codes reported" in realm.server_log()
    assert "wrong_credentials" in "\n".join(replay.new)
    # The server took the report: nothing is left to send.
    assert site.cache.used_codes(site.user) == {}
    # The next code logs in online as ever.
    assert site.run(site.typed(now + 30)).ok


def test_reports_are_idempotent_and_bounded(realm):
    """Through the protocol: a report twice changes nothing; a future counter is ignored."""
    from otpme_auth.otp.base32 import b32decode
    from otpme_auth.otp.hotp import totp
    secret = realm.add_user("carol", "pw of carol 1", second_factor="totp")
    jotp = realm.add_host("h1", tokens=["carol/pass"])
    # The host speaks the protocol through the online plugin's own client.
    from otpme_auth_online.client import Client
    from otpme_auth_online.hostconfig import load
    realm.start()
    conf = load(realm.join("h1", jotp))
    c = Client(conf.servers, conf.ca_file, conf.cert_file, conf.key_file, 3, 10)
    fresh_step()
    now = time.time()
    step = int(now) // 30
    report = [{"token": "carol/totp", "counter": step}]
    for _ in range(2):
        status, answer = c.request("/v1/preauth", {"user": "carol", "offline_used": report})
        assert status == 200 and answer["offline_used"] == 1
    # Far in the future: would burn the user's next codes; ignored and logged.
    status, answer = c.request("/v1/preauth", {"user": "carol", "offline_used": [
        {"token": "carol/totp", "counter": step + 100}]})
    assert status == 200 and answer["offline_used"] == 0
    assert "counter beyond what could have been used" in realm.server_log()
    # Not an OTP token of the user: ignored.
    status, answer = c.request("/v1/preauth", {"user": "carol", "offline_used": [
        {"token": "carol/pass", "counter": 1}, {"token": "mallory/totp", "counter": 1}]})
    assert status == 200 and answer["offline_used"] == 0
    # Malformed: a clear 400, never a 5xx.
    for bad in ([{"token": "carol/totp"}], [{"token": "carol/totp", "counter": -1}],
                [{"token": "carol/totp", "counter": True}], ["x"], [{"token": "x", "counter": 1}]):
        status, answer = c.request("/v1/preauth", {"user": "carol", "offline_used": bad})
        assert status == 400 and answer["error"] == "wrong_type", (bad, answer)
    # The reported step is used; the next one logs in.
    code = totp(b32decode(secret), now)
    assert c.request("/v1/auth", {"user": "carol", "password": "pw of carol 1" + code})[1][
        "reason"] == "wrong_credentials"
    assert c.request("/v1/auth", {"user": "carol", "password": "pw of carol 1" + totp(
        b32decode(secret), now + 30)})[1]["status"] == "ok"
    c.close()
