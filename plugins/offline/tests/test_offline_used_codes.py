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
    # offline on: a host reports only codes it could have accepted offline
    secret = realm.add_user("carol", "pw of carol 1", second_factor="totp", offline=True)
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


def test_a_host_burns_no_codes_of_tokens_it_could_not_hold_offline(realm):
    """A joined host reports only codes of tokens whose offline data it could have been
    given: usable on it and offline-enabled (a password token's second factor by its
    name).  Before, any joined host burnt any user's current codes (a report for a user
    who may not log in there, every 30 s, kept their TOTP logins failing everywhere)."""
    from otpme_auth.otp.base32 import b32decode
    from otpme_auth.otp.hotp import totp
    from otpme_auth_online.client import Client
    from otpme_auth_online.hostconfig import load
    carol = realm.add_user("carol", "pw of carol 1", second_factor="totp", offline=True)
    dave = realm.add_user("dave", "pw of dave 1", second_factor="totp", offline=True)
    erin = realm.add_user("erin", "pw of erin 1", second_factor="totp")   # offline off
    h1 = realm.add_host("h1", tokens=["carol/pass", "erin/pass"])
    h2 = realm.add_host("h2", tokens=["dave/pass", "erin/pass"])
    realm.start()
    clients = {}
    for name, jotp in (("h1", h1), ("h2", h2)):
        conf = load(realm.join(name, jotp))
        clients[name] = Client(conf.servers, conf.ca_file, conf.cert_file, conf.key_file, 3, 10)
    fresh_step()
    now = time.time()
    step = int(now) // 30

    def report(host, user, token):
        status, answer = clients[host].request("/v1/preauth", {
            "user": user, "offline_used": [{"token": token, "counter": step + 1}]})
        assert status == 200, answer
        return answer["offline_used"]

    # dave may not log in on h1, erin's token has offline off: h1 burns nothing of theirs.
    assert report("h1", "dave", "dave/totp") == 0
    assert report("h1", "erin", "erin/totp") == 0
    assert "not a token this host could hold offline" in realm.server_log()
    for user, secret, host in (("dave", dave, "h2"), ("erin", erin, "h2")):
        status, answer = clients[host].request("/v1/auth", {
            "user": user, "password": "pw of %s 1" % user + totp(b32decode(secret), now)})
        assert answer["status"] == "ok", (user, answer)
    # carol's own second factor, offline on h1: taken, her code is used.
    assert report("h1", "carol", "carol/totp") == 1
    status, answer = clients["h1"].request("/v1/auth", {
        "user": "carol", "password": "pw of carol 1" + totp(b32decode(carol), now)})
    assert answer["status"] == "refused"
    for c in clients.values():
        c.close()


def test_codes_are_reported_at_the_hosts_next_contact_whoever_logs_in(pam_harness, system_user,
                                                                       realm):
    """alice used a code offline; the next login that reaches the server is bob's: the host
    reports alice's code with it, so her code is refused online at once, not only after her
    own next online login on this host."""
    site = Site(realm, pam_harness, system_user, second_factor="totp")
    otp_token = "%s/totp" % site.user
    bob = system_user()
    realm.add_user(bob, "bobs own password 7")
    realm.admin("host", "add_token", "h1", "%s/pass" % bob)
    fresh_step()
    now = time.time()
    assert site.run(site.typed(now - 30)).ok
    realm.stop()
    assert site.run(site.typed(now)).ok
    assert site.cache.used_codes(site.user) == {otp_token: int(now) // 30}

    realm.start()
    assert pam_harness.run("login", bob, answers=["bobs own password 7"]).ok
    assert "offline codes reported host=h1 user=%s" % site.user in realm.server_log()
    assert site.cache.used_codes(site.user) == {}
    assert not site.run(site.typed(now)).ok          # the code is a replay now
