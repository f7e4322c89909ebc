"""A user with an ssh key and a YubiKey, both cached offline on one host: a real realm,
real ssh-agents, a real pcscd with the virtual YubiKey, real libpam.

Each online login writes only its own token's cache and leaves the other's
(docs/offline.md: "the caches of the user's other tokens stay"); offline, each
logs in alone, and neither opens with the other's wrong credential.
"""

import os

import pytest

from otpme_auth_smartcard.testing import Pcscd
from otpme_auth_smartcard.testing.vcard import VirtualYubiKey

from agentlib import Keys, RootDir, UserAgent, need_tools

PW = "correct horse battery"
SECRET = bytes(range(1, 21))
OTHER = bytes(range(101, 121))
SERIAL = 12345678
FAST_KDF = "offline_key_func=Argon2_i;min_mem:8,max_mem:8,iterations:1,threads:1"
SEQUENCE = ("authenticate", "setcred", "acct_mgmt", "open_session", "close_session")


@pytest.fixture
def pcscd():
    daemon = Pcscd()
    yield daemon
    daemon.stop()


def test_an_ssh_key_and_a_yubikey_both_log_in_offline(realm, pam_harness, system_user, pcscd,
                                                     tmp_path):
    need_tools()
    (tmp_path / "keys").mkdir()
    keys = Keys(str(tmp_path / "keys"))
    rootdir = RootDir()
    user = system_user()
    realm.add_user(user, PW)
    realm.admin("token", "add", "--type", "ssh", "%s/ed" % user, keys.public["ed25519"])
    realm.admin("token", "add", "--type", "hmac", "--slot", "2", "%s/yk" % user, "-",
                stdin=SECRET.hex() + "\n")
    for token in ("ed", "yk"):
        realm.admin("token", "enable_offline", "%s/%s" % (user, token))
    jotp = realm.add_host("h1", tokens=["%s/ed" % user, "%s/yk" % user, "%s/pass" % user])
    realm.start()
    conf = realm.join("h1", jotp)
    cache_dir = os.path.join(pam_harness.dir, "offline")
    line = ("online host_config=%s connect_timeout=1 cache_login_tokens offline_cache_dir=%s %s "
            "sshagent use_smartcard=auto [smartcard_reader=Virtual PCD]" % (conf, cache_dir, FAST_KDF))
    pam_harness.service("login", pam_harness.line(line), pam_harness.line(line, type="account"),
                        pam_harness.line(line, type="session"))
    agent = UserAgent(user, rootdir.path, [keys.private["ed25519"]])
    stranger = UserAgent(user, rootdir.path, [keys.private["ecdsa256"]])
    inserted = []

    def insert(secret):
        for c in inserted:
            c.remove()
        inserted[:] = [VirtualYubiKey(port=pcscd.port, slots={2: secret}, serial=SERIAL).insert()]

    def login(sock, answers=()):
        mark = len(pam_harness.read_log())
        result = pam_harness.run("login", user, *SEQUENCE, answers=answers,
                                 env=dict(pcscd.env, SSH_AUTH_SOCK=sock))
        result.new = pam_harness.read_log()[mark:]
        assert "Traceback" not in result.output + "\n".join(result.new)
        assert SECRET.hex() not in "\n".join(result.new) + result.output
        return result

    record = os.path.join(cache_dir, user, "ssh.%s%%2Fed" % user)
    try:
        assert login(agent.sock).ok                 # online with the agent's key, no card
        assert os.path.exists(record)
        insert(SECRET)
        online_card = login("")                     # online with the card, no agent
        assert online_card.ok, online_card.new
        assert not any("removed" in line for line in online_card.new), online_card.new
        assert os.path.exists(record)               # the card's login left the ssh record
        for c in inserted:
            c.remove()
        assert login(agent.sock).ok                 # and the agent's left the card's cache
        realm.stop()
        by_key = login(agent.sock)
        assert by_key.ok, by_key.new
        assert "Password" not in by_key.output
        insert(SECRET)
        by_card = login("")
        assert by_card.ok, by_card.new
        assert any("opened with YubiKey %d" % SERIAL in line for line in by_card.new), by_card.new
        # Neither opens with the other's wrong credential; then the password is asked
        # for, and the password token has no cache here (never used online).
        insert(OTHER)                               # a reprogrammed card, no agent
        wrong_card = login("", answers=[PW])
        assert wrong_card.code == "AUTH_ERR", wrong_card.new
        assert any("does not give the enrolled answer" in line for line in wrong_card.new)
        for c in inserted:
            c.remove()
        wrong_key = login(stranger.sock, answers=[PW])   # a key not the user's, no card
        assert wrong_key.code == "AUTH_ERR", wrong_key.new
        assert os.path.exists(record)
    finally:
        for c in inserted:
            c.remove()
        agent.stop()
        stranger.stop()
        rootdir.cleanup()
