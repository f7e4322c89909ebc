"""Offline logins with a YubiKey token (issue 12): real libpam (pam_wrapper + pam_python +
pamtester, auth/account/session), a real realm server that is stopped, a real pcscd with
vpcd and the project's virtual YubiKey answering the real APDUs.

The cache of a card token is keyed from the card's answer to a challenge kept in the cache;
the challenge changes at every login, online or offline (docs/offline.md, "Card tokens").
"""

import json
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from otpme_auth_smartcard.testing.vcard import SW_OK, VirtualYubiKey

pytestmark = pytest.mark.pam

PW = "correct horse battery"
SECRET = bytes(range(1, 21))
OTHER = bytes(range(101, 121))
FULL = ("authenticate", "setcred", "acct_mgmt", "open_session", "close_session")
FAST_KDF = "offline_key_func=Argon2_i;min_mem:8,max_mem:8,iterations:1,threads:1"
SERIAL = 12345678


class RecordingYubiKey(VirtualYubiKey):
    """The enrolled card, its answers recorded (what a sniffer on the card's line sees)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.answers = []

    def _hmac(self, slot, challenge):
        answer = super()._hmac(slot, challenge)
        if answer.endswith(SW_OK):
            self.answers.append(answer[:-2])
        return answer


class ReplayingYubiKey(VirtualYubiKey):
    """A fake card with the enrolled serial that answers every challenge with a recorded answer."""

    def __init__(self, *a, replay, **kw):
        super().__init__(*a, **kw)
        self.replay = replay

    def _hmac(self, slot, challenge):
        return self.replay + SW_OK


@pytest.fixture
def site(realm, pam_harness, pcscd):
    """alice: a password token and a YubiKey token (slot 2), both cached offline on host h1."""
    realm.add_user("alice", PW, offline=True)
    realm.admin("token", "add", "--type", "hmac", "--slot", "2", "alice/yk", "-",
                stdin=SECRET.hex() + "\n")
    realm.admin("token", "enable_offline", "alice/yk")
    jotp = realm.add_host("h1", tokens=["alice/pass", "alice/yk"])
    realm.start()
    conf = realm.join("h1", jotp)
    cache_dir = os.path.join(pam_harness.dir, "offline")

    def login(use="auto", answers=(), extra="", functions=FULL):
        options = ("online host_config=%s use_smartcard=%s [smartcard_reader=Virtual PCD] "
                   "connect_timeout=1 cache_login_tokens offline_cache_dir=%s %s %s"
                   % (conf, use, cache_dir, FAST_KDF, extra))
        pam_harness.service("sc", pam_harness.line(options),
                            pam_harness.line(options, type="account", control="sufficient"),
                            "account required pam_permit.so",
                            pam_harness.line(options, type="session"),
                            "session required pam_permit.so")
        mark = len(pam_harness.read_log())
        result = pam_harness.run("sc", "alice", *functions, answers=list(answers), env=pcscd.env)
        result.new = result.log[mark:]
        return result

    def public():
        from otpme_auth_offline.cache import OfflineCache
        header = OfflineCache(cache_dir).info("alice", "alice/yk")
        return None if header is None else json.loads(header.public)

    return realm, pcscd, login, public


def card(pcscd, cls=VirtualYubiKey, **kw):
    kw.setdefault("slots", {2: SECRET})
    kw.setdefault("serial", SERIAL)
    c = cls(port=pcscd.port, **kw).insert()
    pcscd.inserted = getattr(pcscd, "inserted", []) + [c]
    return c


@pytest.fixture(autouse=True)
def _remove_cards(pcscd):
    yield
    for c in getattr(pcscd, "inserted", []):
        c.remove()


def clean(result, *answers):
    text = "\n".join(result.log) + result.output
    assert "Traceback" not in text
    for secret in (SECRET, OTHER) + answers:
        assert secret.hex() not in text and secret.hex().upper() not in text


def cache_both(login, pcscd, public):
    """An online password login (no card) and an online card login: both tokens cached."""
    result = login(answers=[PW])
    assert result.ok, "\n".join(result.log)
    yk = card(pcscd, RecordingYubiKey)
    result = login()
    assert result.ok, "\n".join(result.log)
    assert "Password" not in result.output
    assert public()["serial"] == SERIAL and public()["slot"] == 2
    yk.remove()
    return yk


def test_offline_login_with_the_card_rotates_the_challenge(site):
    realm, pcscd, login, public = site
    yk = card(pcscd, RecordingYubiKey)
    result = login()
    assert result.ok, "\n".join(result.log)
    first = public()["challenge"]
    assert len(bytes.fromhex(first)) == 32
    realm.stop()
    seen = []
    for _ in range(2):
        result = login()
        assert result.ok, "\n".join(result.new)
        assert "Password" not in result.output   # the card answers: nothing to type
        assert any("opened with YubiKey %d; next challenge set" % SERIAL in line
                   for line in result.new), result.new
        seen.append(public()["challenge"])
    assert len({first, *seen}) == 3   # a new challenge at every login
    clean(result, *yk.answers)


def test_online_login_rekeys_too(site):
    realm, pcscd, login, public = site
    card(pcscd)
    assert login().ok
    first = public()["challenge"]
    assert login().ok
    assert public()["challenge"] != first


def test_a_replayed_answer_never_opens_the_cache_again(site):
    realm, pcscd, login, public = site
    yk = card(pcscd, RecordingYubiKey)
    assert login().ok
    realm.stop()
    before = len(yk.answers)
    assert login().ok
    used = yk.answers[before]   # the answer that opened the cache offline
    yk.remove()
    fake = card(pcscd, ReplayingYubiKey, replay=used)
    result = login(functions=("authenticate",))
    assert result.code == "AUTH_ERR"
    assert any("does not give the enrolled answer" in line for line in result.new), result.new
    clean(result, *yk.answers)
    fake.remove()
    # the enrolled card still opens it
    card(pcscd)
    assert login().ok


def test_card_removed_auto_uses_the_password_cache_true_refuses(site):
    realm, pcscd, login, public = site
    cache_both(login, pcscd, public)
    realm.stop()
    result = login(answers=[PW])
    assert result.ok, "\n".join(result.new)
    assert any("no YubiKey is connected" in line for line in result.new), result.new
    result = login(use="true", answers=[PW], functions=("authenticate",))
    assert result.code == "AUTH_ERR"
    assert "Password" not in result.output
    assert any("smartcard required, none connected" in line for line in result.new)


def test_wrong_card_is_refused_with_a_clear_message(site):
    realm, pcscd, login, public = site
    card(pcscd)
    assert login().ok
    realm.stop()
    for c in pcscd.inserted:
        c.remove()
    other = card(pcscd, serial=2222, slots={2: OTHER})
    result = login(extra="show_errors", functions=("authenticate",))
    assert result.code == "AUTH_ERR"
    assert "This YubiKey is not the one enrolled for your offline login." in result.output
    assert any("YubiKey 2222 is not the card of alice token alice/yk (YubiKey %d)" % SERIAL
               in line for line in result.new), result.new
    clean(result)
    other.remove()
    # same serial, another secret (the card was reprogrammed)
    card(pcscd, slots={2: OTHER})
    result = login(extra="show_errors", functions=("authenticate",))
    assert result.code == "AUTH_ERR"
    assert "This YubiKey is not the one enrolled for your offline login." in result.output
    clean(result)


def test_slow_card_times_out_offline(site):
    realm, pcscd, login, public = site
    yk = card(pcscd)
    assert login().ok
    realm.stop()
    yk.remove()
    card(pcscd, delay=3)
    result = login(extra="smartcard_timeout=1 show_errors", functions=("authenticate",))
    assert result.code == "AUTH_ERR"
    assert "The YubiKey did not answer in time." in result.output
    assert any("no answer within 1s" in line for line in result.new), result.new
    clean(result)


def test_pcscd_not_running_offline(site):
    realm, pcscd, login, public = site
    cache_both(login, pcscd, public)
    realm.stop()
    pcscd.stop()
    result = login(answers=[PW])
    assert result.ok, "\n".join(result.new)
    result = login(use="true", answers=[PW], functions=("authenticate",))
    assert result.code == "AUTH_ERR"
    assert any("smartcard required, none usable" in line for line in result.new)
    clean(result)


def test_forty_parallel_wrong_card_attempts_check_three(site, pam_harness):
    """40 offline logins at once with a reprogrammed card (the enrolled serial, another
    secret): the throttle lets three reach the key derivation and refuses the other 37
    before it; the enrolled card is then refused too until the delay has passed."""
    realm, pcscd, login, public = site
    card(pcscd)
    assert login().ok          # online: the card token is cached (and service "sc" written)
    realm.stop()
    for c in pcscd.inserted:
        c.remove()
    card(pcscd, slots={2: OTHER})
    mark = len(pam_harness.read_log())
    # 40 pamtester processes at once.  They share the one virtual reader, so pcscd takes
    # their card transactions one after the other: each asks the card, then the cache.
    with ThreadPoolExecutor(40) as pool:
        results = list(pool.map(
            lambda _: pam_harness.run("sc", "alice", "authenticate", env=pcscd.env, timeout=300),
            range(40)))
    assert [r.code for r in results] == ["AUTH_ERR"] * 40, [r.explain() for r in results
                                                            if r.code != "AUTH_ERR"][:3]
    new = pam_harness.read_log()[mark:]

    def logins(text):   # the processes (otpme-auth[PID]) that logged ``text``
        return {line.split("[", 1)[1].split("]", 1)[0] for line in new if text in line}
    checked = logins("does not give the enrolled answer")
    throttled = logins("failed attempts; next attempt allowed")
    assert (len(checked), len(throttled), len(checked | throttled)) == (3, 37, 40), \
        "\n".join(new[-20:])
    from otpme_auth_offline.cache import OfflineCache
    assert OfflineCache(os.path.join(pam_harness.dir, "offline")).failures("alice")[0] == 3
    for result in results:
        clean(result)
    # The enrolled card, inside the delay: refused before the derivation, with the wait.
    for c in pcscd.inserted:
        c.remove()
    card(pcscd)
    early = login(functions=("authenticate",))
    assert early.code == "AUTH_ERR"
    wait = [int(m.group(1)) for line in early.new
            for m in [re.search(r"next attempt allowed in (\d+) s", line)] if m]
    assert wait and 0 < wait[0] <= 5, early.new
    # After it, the enrolled card opens the cache, and the count starts again.
    time.sleep(wait[0] + 0.5)
    late = login(functions=("authenticate",))
    assert late.ok, "\n".join(late.new)
    assert OfflineCache(os.path.join(pam_harness.dir, "offline")).failures("alice")[0] == 0
    clean(late)
