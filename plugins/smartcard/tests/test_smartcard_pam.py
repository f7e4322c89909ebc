"""The smartcard plugin end to end: real libpam (pam_wrapper + pam_python + pamtester, the
full auth/account/session sequence), a real realm server, a real pcscd with vpcd, and a
virtual YubiKey OTP applet answering the real APDUs."""

import os

import pytest

pytestmark = pytest.mark.pam

PW = "correct horse battery"
SECRET = bytes(range(1, 21))
OTHER = bytes(range(101, 121))
FULL = ("authenticate", "setcred", "acct_mgmt", "open_session", "close_session")


@pytest.fixture
def site(realm, pam_harness, pcscd):
    """alice: a password token and a YubiKey token (slot 2), both allowed on host h1."""
    realm.add_user("alice", PW)
    realm.admin("token", "add", "--type", "hmac", "--slot", "2", "alice/yk", "-",
                stdin=SECRET.hex() + "\n")
    jotp = realm.add_host("h1", tokens=["alice/pass", "alice/yk"])
    realm.start()
    conf = realm.join("h1", jotp)

    def login(use="auto", answers=(), extra="", functions=FULL):
        options = "online host_config=%s use_smartcard=%s [smartcard_reader=Virtual PCD] %s" % (
            conf, use, extra)
        # as a distribution's stack: our account/session lines, then pam_permit
        pam_harness.service("sc", pam_harness.line(options),
                            pam_harness.line(options, type="account", control="sufficient"),
                            "account required pam_permit.so",
                            pam_harness.line(options, type="session"),
                            "session required pam_permit.so")
        return pam_harness.run("sc", "alice", *functions, answers=list(answers), env=pcscd.env)
    return realm, pcscd, login


def _no_secret_in(result):
    text = "\n".join(result.log) + result.output
    assert SECRET.hex() not in text and OTHER.hex() not in text


def test_card_login_asks_nothing_and_the_server_verifies(site):
    realm, pcscd, login = site
    card = pcscd.card(slots={2: SECRET})
    result = login()
    assert result.ok, result.output + "\n".join(result.log)
    assert "Password" not in result.output
    assert any("answered the server's challenge (slot 2)" in line for line in result.log)
    assert "alice/yk" in realm.server_log(), realm.server_log()
    assert (0x01, 0x38) in card.apdus  # the slot-2 HMAC command went to the card
    _no_secret_in(result)


def test_slot_one(site):
    realm, pcscd, login = site
    realm.admin("token", "add", "--type", "hmac", "--slot", "1", "--replace", "alice/yk", "-",
                stdin=SECRET.hex() + "\n")
    realm.admin("host", "add_token", "h1", "alice/yk")  # a replaced token is a new token
    card = pcscd.card(slots={1: SECRET})
    result = login()
    assert result.ok, "\n".join(result.log)
    assert (0x01, 0x30) in card.apdus


def test_no_card_auto_falls_back_to_the_password(site):
    realm, pcscd, login = site
    result = login(answers=[PW])
    assert result.ok, "\n".join(result.log)
    assert "Password" in result.output


def test_no_card_true_is_refused_before_any_prompt(site):
    realm, pcscd, login = site
    result = login(use="true", answers=[PW])
    assert result.code == "AUTH_ERR"
    assert "Password" not in result.output
    assert any("smartcard required, none connected" in line for line in result.log)


def test_use_smartcard_false_ignores_the_card(site):
    realm, pcscd, login = site
    card = pcscd.card(slots={2: SECRET})
    result = login(use="false", answers=[PW])
    assert result.ok and "Password" in result.output
    assert card.apdus == []  # never even selected


def test_another_users_card_is_refused(site):
    realm, pcscd, login = site
    pcscd.card(slots={2: OTHER})
    result = login(answers=[PW])
    assert result.code == "AUTH_ERR"
    assert any("wrong_credentials" in line for line in result.log)
    _no_secret_in(result)


def test_unenrolled_card_auto_uses_the_password_true_refuses(site):
    realm, pcscd, login = site
    pcscd.card(slots={1: OTHER})  # nothing in slot 2, the token's slot
    result = login(answers=[PW])
    assert result.ok and "Password" in result.output
    result = login(use="true", answers=[PW])
    assert result.code == "AUTH_ERR"
    assert any("slot 2 of this card is empty" in line for line in result.log)


def test_several_cards_are_refused(site):
    realm, pcscd, login = site
    pcscd.card(slots={2: SECRET}, serial=1111)
    pcscd.card(reader=1, slots={2: SECRET}, serial=2222)
    result = login(answers=[PW])
    assert result.code == "AUTH_ERR"
    assert any("2 smartcards connected" in line for line in result.log)


def test_touch_prompt_then_success(site):
    realm, pcscd, login = site
    pcscd.card(slots={2: SECRET}, touch={2}, touch_after=0.3)
    result = login()
    assert result.ok, "\n".join(result.log)
    assert "Touch your YubiKey" in result.output


def test_untouched_card_times_out(site):
    realm, pcscd, login = site
    pcscd.card(slots={2: SECRET}, touch={2})
    result = login(extra="smartcard_timeout=1", functions=("authenticate",))
    assert result.code == "AUTH_ERR"
    assert any("no answer within 1s" in line for line in result.log)


def test_slow_card_times_out(site):
    realm, pcscd, login = site
    pcscd.card(slots={2: SECRET}, delay=3)
    result = login(extra="smartcard_timeout=1", functions=("authenticate",))
    assert result.code == "AUTH_ERR"
    assert any("no answer within 1s" in line for line in result.log)


def test_pcscd_not_running(site):
    realm, pcscd, login = site
    pcscd.stop()
    result = login(answers=[PW])
    assert result.ok and "Password" in result.output
    assert any("no smartcard" in line and "pcscd" in line for line in result.log)
    result = login(use="true", answers=[PW])
    assert result.code == "AUTH_ERR"
    assert any("smartcard required, none usable" in line for line in result.log)


def test_deploy_programs_the_card_then_it_logs_in(site, monkeypatch):
    """otpme-auth-admin token deploy: a fresh secret goes into the card's slot (yubikit's
    put_configuration over PC/SC) and the store, and is never printed."""
    realm, pcscd, login = site
    monkeypatch.setenv("PCSCLITE_CSOCK_NAME", pcscd.socket)
    card = pcscd.card(slots={})
    out = realm.admin("token", "deploy", "--slot", "1", "--touch", "--reader", "Virtual PCD",
                      "alice/card")
    assert "deployed to YubiKey 12345678, slot 1 (touch required)" in out
    assert set(card.slots) == {1} and card.touch_slots == {1}
    assert card.slots[1].hex() not in out
    realm.admin("host", "add_token", "h1", "alice/card")
    realm.admin("token", "disable", "alice/yk")  # only the deployed token can answer
    card.touch_after = 0.2
    result = login()
    assert result.ok, "\n".join(result.log)
    assert "alice/card" in realm.server_log()
    # An existing secret from stdin, into slot 2 of the same card.
    realm.admin("token", "deploy", "--reader", "Virtual PCD", "alice/card2", "-",
                stdin=OTHER.hex() + "\n")
    assert card.slots[2] == OTHER and 2 not in card.touch_slots


def test_deploy_refuses_without_exactly_one_card(site, monkeypatch):
    realm, pcscd, login = site
    monkeypatch.setenv("PCSCLITE_CSOCK_NAME", pcscd.socket)
    with pytest.raises(RuntimeError, match="connect exactly one YubiKey"):
        realm.admin("token", "deploy", "--reader", "Virtual PCD", "alice/card")
    with pytest.raises(RuntimeError, match="no secret on the command line"):
        realm.admin("token", "deploy", "--reader", "Virtual PCD", "alice/card", SECRET.hex())
    # nothing was stored
    assert "alice/card" not in realm.admin("token", "list", "alice")


def test_cli_lists_the_cards_a_login_would_see(pcscd):
    import subprocess
    import sys
    cli = os.path.join(os.path.dirname(sys.executable), "otpme-auth")
    env = dict(os.environ, **pcscd.env)

    def run():
        return subprocess.run([cli, "smartcard", "list", "--reader", "Virtual PCD"], env=env,
                              capture_output=True, text=True, timeout=60)
    assert "no YubiKey connected" in run().stdout
    pcscd.card(slots={1: OTHER, 2: SECRET}, touch={1}, serial=4242)
    out = run()
    assert out.returncode == 0, out.stderr
    assert "serial 4242  firmware 5.4.3" in out.stdout and "1 (touch), 2" in out.stdout
    pcscd.stop()
    out = run()
    assert out.returncode == 1 and "pcscd" in out.stdout


def test_the_login_path_imports_no_yubikit(pcscd):
    """The card is read and answers through libpcsclite and ctypes: neither yubikit/ykman
    (~80 ms of imports; they stay for programming cards, token deploy) nor pyscard's
    package (10-20 ms)."""
    import subprocess
    import sys
    pcscd.card(slots={2: SECRET}, serial=4242)
    code = ("import sys; from otpme_auth_smartcard import card\n"
            "(c,) = card.find('Virtual PCD'); assert c.serial == 4242 and c.slots == {2}\n"
            "assert len(c.hmac(2, b'x' * 32, 10)) == 20\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('yubikit', 'ykman', 'smartcard'))\n"
            "assert not bad, bad\n")
    done = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, **pcscd.env),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
