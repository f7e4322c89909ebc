"""The offline plugin's hooks through the host, with a stand-in for online (no server)."""

import io
import json
import os
import time

import pytest

import otpme_auth_offline as offline
from otpme_auth.keys import LOGIN_ANSWER
from otpme_auth_offline.keys import OFFLINE_FIRST
from otpme_auth_offline.cache import OfflineCache

BAD = "bad guess 123"

from offline_testlib import FAST_KDF, PW, fake_answer, fake_online, totp_code


@pytest.fixture
def line(tmp_path):
    return "cache_login_tokens offline_cache_dir=%s %s" % (tmp_path / "offline", FAST_KDF)


def cache_dir(line):
    return line.split("offline_cache_dir=")[1].split()[0]


def login(run_login, line, typed, online, user="alice", **kw):
    return run_login({"online": online, "offline": offline}, "online " + line, user=user,
                     answers=[typed], **kw)


def test_online_login_caches_then_offline_login_works(run_login, line):
    assert login(run_login, line, PW, fake_online()).ok
    cache = OfflineCache(cache_dir(line))
    assert cache.list_tokens("alice") == ["alice/pass"]
    result = login(run_login, line, PW, fake_online(reachable=False))
    assert result.ok and result.ctx.offline
    assert result.ctx.verified_by == ("offline",)
    answer = result.ctx.stash[LOGIN_ANSWER]
    assert answer["user"] == "alice" and answer["token"] == "alice/pass" and answer["offline"] == []
    assert answer["session"] is None           # not kept: session_keep is off


def test_wrong_password_offline_is_a_final_deny_with_a_clear_line(run_login, line):
    login(run_login, line, PW, fake_online())
    result = login(run_login, line, BAD, fake_online(reachable=False), authtok=None)
    assert result.code == "AUTH_ERR"
    decision = [d for d in result.ctx.decisions if d.plugin == "offline"][0]
    assert decision.final
    assert any("wrong secret, or the file was altered" in x for x in result.log)
    assert not any(BAD in x for x in result.log)


def test_no_cache_is_unavailable(run_login, line):
    result = login(run_login, line, PW, fake_online(reachable=False))
    assert result.code == "AUTHINFO_UNAVAIL"


def test_online_deny_never_reaches_the_cache(run_login, line):
    login(run_login, line, PW, fake_online())
    result = login(run_login, line, BAD, fake_online())
    assert result.code == "AUTH_ERR"
    assert not result.called("otpme_auth_verify_fallback")


def test_password_and_code_offline_one_time(run_login, line):
    now = time.time()
    step = int(now) // 30
    online = fake_online(fake_answer(second_factor=True, last_counter=step))
    assert login(run_login, line, PW + totp_code(now), online).ok
    down = fake_online(reachable=False)
    # the code the server just took is behind the cached counter
    assert login(run_login, line, PW + totp_code(now), down).code == "AUTH_ERR"
    nxt = totp_code(now + 30)
    result = login(run_login, line, PW + nxt, down)
    assert result.ok, result.log
    again = login(run_login, line, PW + nxt, down)
    assert again.code == "AUTH_ERR"
    assert any("already used" in x for x in again.log)
    assert not any(nxt in x for x in again.log + result.log)


def test_password_without_the_code_is_refused_offline(run_login, line):
    online = fake_online(fake_answer(second_factor=True, last_counter=0))
    assert login(run_login, line, PW + totp_code(time.time()), online).ok
    result = login(run_login, line, PW, fake_online(reachable=False))
    assert result.code == "AUTH_ERR"


def test_higher_cached_counter_is_kept(run_login, line):
    now = time.time()
    step = int(now) // 30
    assert login(run_login, line, PW + totp_code(now),
                 fake_online(fake_answer(second_factor=True, last_counter=step - 5))).ok
    assert login(run_login, line, PW + totp_code(now), fake_online(reachable=False)).ok
    # the server is behind (it never saw the offline code): re-caching keeps the higher
    assert login(run_login, line, PW + totp_code(now),
                 fake_online(fake_answer(second_factor=True, last_counter=step - 5))).ok
    payload = OfflineCache(cache_dir(line)).unlock("alice", "alice/pass", PW + "000000").payload
    assert json.loads(payload)["entry"]["second_factor"]["last_counter"] == step


def test_session_is_cached_when_kept(run_login, line):
    assert login(run_login, line, PW, fake_online(fake_answer(keep=True, session_id="abc"))).ok
    result = login(run_login, line, PW, fake_online(reachable=False))
    session = result.ctx.stash[LOGIN_ANSWER]["session"]
    assert session["id"] == "abc" and session["keep"] and session["started"] <= time.time()


def test_pinned_token_refuses_an_online_login_with_another(run_login, line, tmp_path):
    from otpme_auth.cli import main
    assert login(run_login, line, PW, fake_online()).ok
    out = io.StringIO()
    assert main(["pin-offline-token", "alice", "alice/pass", "--cache-dir", cache_dir(line)],
                out=out) == 0
    other = fake_online(fake_answer(token="alice/other"))
    result = login(run_login, line, PW, other)
    assert result.code == "AUTH_ERR"
    assert any("pinned to token alice/pass" in x for x in result.log)
    assert login(run_login, line, PW, fake_online()).ok
    assert main(["unpin-offline-token", "alice", "--cache-dir", cache_dir(line)], out=out) == 0
    assert login(run_login, line, PW, other).ok


def test_show_offline_token_shows_no_secret(run_login, line):
    from otpme_auth.cli import main
    now = time.time()
    login(run_login, line, PW + totp_code(now),
          fake_online(fake_answer(second_factor=True, last_counter=0)))
    out = io.StringIO()
    assert main(["show-offline-token", "--cache-dir", cache_dir(line)], out=out) == 0
    text = out.getvalue()
    assert "user alice: pinned token: none; failed offline attempts: 0" in text
    assert "token alice/pass: cached" in text and "6-digit code" in text
    assert PW not in text and "JBSWY3DP" not in text


def test_throttled_after_failures_even_with_the_right_password(run_login, line):
    login(run_login, line, PW, fake_online())
    down = fake_online(reachable=False)
    for _ in range(3):
        assert login(run_login, line, BAD, down).code == "AUTH_ERR"
    result = login(run_login, line, PW, down)
    assert result.code == "AUTH_ERR"
    assert any("next attempt allowed in" in x for x in result.log)


def test_expired_cache_is_refused_and_removed(run_login, line, monkeypatch):
    login(run_login, line, PW, fake_online(fake_answer(unused=60)))
    later = time.time() + 120
    monkeypatch.setattr(offline, "open_cache", lambda options: OfflineCache(
        options.offline_cache_dir, clock=lambda: later))
    result = login(run_login, line, PW, fake_online(reachable=False))
    assert result.code == "AUTH_ERR"
    assert any("expired (unused expiry) and removed" in x for x in result.log)
    assert OfflineCache(cache_dir(line)).list_tokens("alice") == []


def test_unlock_via_offline_token_keeps_the_server_out(run_login, line):
    login(run_login, line, PW, fake_online())
    unlock_line = line + " unlock_via_offline_token"
    result = login(run_login, unlock_line, PW, fake_online())
    assert result.ok and result.ctx.offline
    assert result.ctx.stash[OFFLINE_FIRST] == "unlock_via_offline_token"
    # a user without a cache goes online as usual
    result = login(run_login, unlock_line, PW, fake_online(), user="bob")
    assert result.ok and not result.ctx.offline


def test_unlock_via_offline_token_unreadable_cache_fails_closed(run_login, line):
    login(run_login, line, PW, fake_online())
    os.chmod(os.path.join(cache_dir(line), "alice"), 0o755)   # not ours any more to trust
    result = login(run_login, line + " unlock_via_offline_token", PW, fake_online())
    assert result.code == "AUTH_ERR" and result.prompts == []
    assert any("unlock_via_offline_token: cannot read the offline cache" in x
               for x in result.log)


def test_weak_password_below_the_policy_minimum_is_not_cached(run_login, line):
    weak = "monkey123456"   # scores 2
    policy = {"name": "strict", "type": "password_strength", "min_length": 8, "min_score": 5}
    strength = line + " check_offline_pass_strength=auto;0:2,5:1"
    online = fake_online(fake_answer(policy=policy), password=weak)
    assert login(run_login, strength, weak, online).ok
    assert OfflineCache(cache_dir(line)).list_tokens("alice") == []
    policy["min_score"] = 0
    assert login(run_login, strength, weak, online).ok
    header = OfflineCache(cache_dir(line)).info("alice", "alice/pass")
    assert header.params.iterations == 2   # the weak password got the table's work for score 2


def test_without_cache_login_tokens_nothing_is_cached(run_login, tmp_path):
    line = "unlock_via_offline_token offline_cache_dir=%s" % (tmp_path / "c")
    assert login(run_login, line, PW, fake_online()).ok
    assert not os.path.exists(tmp_path / "c" / "alice")


def test_import_is_light():
    import subprocess
    import sys
    code = ("import sys, otpme_auth_offline; "
            "print(sorted(m for m in ('argon2', 'cryptography', 'json') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.strip() == "[]"


# -- issue 8, point 12: the cache of the token that logged in is this login's, or none --

def test_answer_without_offline_data_removes_the_tokens_cache(run_login, line):
    assert login(run_login, line, PW, fake_online()).ok
    cache = OfflineCache(cache_dir(line))
    assert cache.list_tokens("alice") == ["alice/pass"]
    answer = dict(fake_answer(), offline=[])          # disable_offline on the server
    result = login(run_login, line, PW + "new", fake_online(answer, password=PW))
    assert result.ok
    assert cache.list_tokens("alice") == []
    assert any("offline cache of alice token alice/pass removed: the server sent no offline "
               "data" in x for x in result.log)
    for typed in (PW, PW + "new"):
        assert login(run_login, line, typed, fake_online(reachable=False)).code == \
            "AUTHINFO_UNAVAIL"


def test_a_cache_not_renewed_by_the_login_is_removed(run_login, line):
    """The new password is below the policy's minimum: not cached, and the old cache goes."""
    assert login(run_login, line, PW, fake_online()).ok
    strict = fake_answer(policy={"name": "strict", "min_length": 8, "min_score": 10})
    result = login(run_login, line + " check_offline_pass_strength=auto", "password1",
                   fake_online(strict, password="password1"))
    assert result.ok
    assert OfflineCache(cache_dir(line)).list_tokens("alice") == []
    assert any("not renewed by this online login" in x for x in result.log)
    assert login(run_login, line, PW, fake_online(reachable=False)).code == "AUTHINFO_UNAVAIL"


def test_other_tokens_caches_stay(run_login, line):
    """The answer speaks only of the token that logged in; another token's cache stays."""
    other = fake_answer(token="alice/other")
    assert login(run_login, line, PW, fake_online(other)).ok
    answer = dict(fake_answer(), offline=[])
    assert login(run_login, line, PW, fake_online(answer)).ok
    assert OfflineCache(cache_dir(line)).list_tokens("alice") == ["alice/other"]


def test_host_disabled_drops_every_cache_but_keeps_pins_and_reports(run_login, line, tmp_path):
    from otpme_auth import LoginRefused
    from otpme_auth_offline.keys import HOST_DISABLED
    from otpme_auth.testing import make_plugin
    for user in ("alice", "bob"):
        assert login(run_login, line, PW, fake_online(fake_answer(user)), user=user).ok
    cache = OfflineCache(cache_dir(line))
    cache.pin("alice", "alice/pass")
    cache.record_used_codes("bob", [("bob/totp", 7)])

    def refused(ctx):
        ctx.stash[HOST_DISABLED] = "host_disabled"
        raise LoginRefused("pre-auth refused: 403 host_disabled")
    online = make_plugin("online", otpme_auth_collect_credentials=refused,
                         otpme_auth_verify=lambda ctx: None)
    result = login(run_login, line, PW, online)
    assert result.code == "AUTH_ERR"
    assert cache.list_tokens("alice") == [] and cache.list_tokens("bob") == []
    assert cache.pinned("alice") == "alice/pass"
    assert cache.used_codes("bob") == {"bob/totp": 7}
    assert any("host_disabled): 2 offline cache(s) of 2 user(s) removed" in x for x in result.log)
