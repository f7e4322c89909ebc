"""sessionkeep with the kit (a stand-in for online, the real offline plugin) and through libpam."""

import json
import os
import pwd
import stat
import time

import otpme_auth_offline as offline
import otpme_auth_sessionkeep as sessionkeep
from otpme_auth import PASSWORD, allow, unavailable
from otpme_auth.keys import GREETING, LOGIN_ANSWER
from otpme_auth.testing import make_plugin

PW = "correct horse battery"
FAST_KDF = "offline_key_func=Argon2_i;min_mem:8,max_mem:8,iterations:1,threads:1"


def answer(user, keep=True, sid="sess-1", expires=None):
    now = time.time()
    return {"status": "ok", "user": user, "token": "%s/pass" % user, "token_type": "password",
            "session": {"id": sid, "expires": expires or now + 3600, "keep": keep},
            "offline": [{"token": "%s/pass" % user, "type": "password", "session_keep": keep,
                         "verify": "password", "expiry": now + 86400, "unused_expiry": 86400,
                         "second_factor": None}],
            "shares": ["home"], "auto_mount": False, "greeting": "Welcome, %s." % user}


def stand_in(data=None, reachable=True):
    def verify(ctx):
        if not reachable:
            return unavailable("down")
        ctx.stash[LOGIN_ANSWER] = data
        ctx.stash[GREETING] = data["greeting"]
        return allow()
    return make_plugin("online", otpme_auth_collect_credentials=lambda ctx: ctx.ask_authtok(),
                       otpme_auth_verify=verify)


def setup(tmp_path, system_user):
    user = system_user()
    uid = pwd.getpwnam(user).pw_uid
    line = ("online sessionkeep session_dir=%s/run/%%u/otpme-auth/session cache_login_tokens "
            "offline_cache_dir=%s/offline %s" % (tmp_path, tmp_path, FAST_KDF))
    return user, uid, line, os.path.join(str(tmp_path), "run", str(uid), "otpme-auth", "session")


def plugins(online):
    return {"online": online, "offline": offline, "sessionkeep": sessionkeep}


def test_online_keeps_offline_restores(run_login, tmp_path, system_user):
    user, uid, line, path = setup(tmp_path, system_user)
    result = run_login(plugins(stand_in(answer(user))), line, user=user, answers=[PW])
    assert result.ok
    assert result.ctx.stash[GREETING] == "Welcome, %s. A new session was started." % user
    st = os.lstat(path)
    assert stat.S_ISREG(st.st_mode) and st.st_uid == uid and stat.S_IMODE(st.st_mode) == 0o600
    for d in (os.path.dirname(path), os.path.dirname(os.path.dirname(path))):
        st = os.lstat(d)
        assert st.st_uid == uid and stat.S_IMODE(st.st_mode) == 0o700
    kept = json.load(open(path))
    assert kept["id"] == "sess-1" and not kept["restored"]
    os.unlink(path)
    result = run_login(plugins(stand_in(reachable=False)), line, user=user, answers=[PW])
    assert result.ok and result.ctx.offline
    assert "your session from" in result.ctx.stash[GREETING]
    assert "logged in offline" in result.ctx.stash[GREETING]
    restored = json.load(open(path))
    assert restored["id"] == "sess-1" and restored["restored"]
    # the next online login replaces it
    result = run_login(plugins(stand_in(answer(user, sid="sess-2"))), line, user=user, answers=[PW])
    assert json.load(open(path))["id"] == "sess-2"


def test_session_not_kept_writes_nothing(run_login, tmp_path, system_user):
    user, uid, line, path = setup(tmp_path, system_user)
    result = run_login(plugins(stand_in(answer(user, keep=False))), line, user=user, answers=[PW])
    assert result.ok and not os.path.exists(path)
    assert result.ctx.stash[GREETING] == "Welcome, %s." % user


def test_expired_session_is_not_restored(run_login, tmp_path, system_user):
    user, uid, line, path = setup(tmp_path, system_user)
    data = answer(user, expires=time.time() + 1)
    assert run_login(plugins(stand_in(data)), line, user=user, answers=[PW]).ok
    os.unlink(path)
    time.sleep(1.1)
    result = run_login(plugins(stand_in(reachable=False)), line, user=user, answers=[PW])
    assert result.ok and not os.path.exists(path)
    assert any("has expired; not restored" in x for x in result.log)


def test_planted_symlink_is_refused_and_not_followed(run_login, tmp_path, system_user):
    user, uid, line, path = setup(tmp_path, system_user)
    assert run_login(plugins(stand_in(answer(user))), line, user=user, answers=[PW]).ok
    victim = tmp_path / "victim"
    victim.write_text("root's file\n")
    os.unlink(path)
    os.symlink(victim, path)      # what the user could do in their own runtime dir
    result = run_login(plugins(stand_in(answer(user, sid="x"))), line, user=user, answers=[PW])
    assert result.ok                                  # a session that cannot be kept is logged
    assert any("session of %s not kept" % user in x and "symlink" in x for x in result.log)
    assert victim.read_text() == "root's file\n"
    # the directory replaced by a symlink: refused too
    d = os.path.dirname(path)
    os.unlink(path)
    os.rename(d, tmp_path / "elsewhere")
    os.symlink(tmp_path / "elsewhere", d)
    result = run_login(plugins(stand_in(answer(user))), line, user=user, answers=[PW])
    assert any("session of %s not kept" % user in x for x in result.log)
    assert os.listdir(tmp_path / "elsewhere") == []


def test_a_file_of_another_owner_is_refused(run_login, tmp_path, system_user):
    user, uid, line, path = setup(tmp_path, system_user)
    assert run_login(plugins(stand_in(answer(user))), line, user=user, answers=[PW]).ok
    os.chown(path, 0, 0)
    result = run_login(plugins(stand_in(answer(user, sid="y"))), line, user=user, answers=[PW])
    assert any("must be owned by uid %d" % uid in x for x in result.log)
    assert json.load(open(path))["id"] == "sess-1"


def test_through_real_libpam_with_the_server(pam_harness, system_user, realm, tmp_path):
    user = system_user()
    uid = pwd.getpwnam(user).pw_uid
    realm.add_user(user, PW, offline=True, session_keep=True)
    jotp = realm.add_host("h1", tokens=["%s/pass" % user])
    realm.start()
    conf = realm.join("h1", jotp)
    options = ("try_first_pass host_config=%s connect_timeout=1 sessionkeep cache_login_tokens "
               "session_dir=%s/run/%%u/session offline_cache_dir=%s/offline %s "
               "online_greeting offline_greeting message_timeout=0"
               % (conf, tmp_path, tmp_path, FAST_KDF))
    pam_harness.service("login", pam_harness.line(options))
    result = pam_harness.run("login", user, answers=[PW])
    assert result.ok, result.log
    assert "A new session was started." in result.output
    path = os.path.join(str(tmp_path), "run", str(uid), "session")
    online_id = json.load(open(path))["id"]
    realm.stop()
    os.unlink(path)
    result = pam_harness.run("login", user, answers=[PW])
    assert result.ok, result.log
    assert "was restored" in result.output
    assert json.load(open(path))["id"] == online_id
    assert os.lstat(path).st_uid == uid


def test_shared_parents_are_root_owned(run_login, tmp_path, system_user):
    user = system_user()
    uid = pwd.getpwnam(user).pw_uid
    line = ("online sessionkeep session_dir=%s/lib/sessions/%%u/session cache_login_tokens "
            "offline_cache_dir=%s/offline %s" % (tmp_path, tmp_path, FAST_KDF))
    assert run_login(plugins(stand_in(answer(user))), line, user=user, answers=[PW]).ok
    shared = os.lstat(tmp_path / "lib" / "sessions")
    assert shared.st_uid == 0 and stat.S_IMODE(shared.st_mode) == 0o755
    mine = os.lstat(tmp_path / "lib" / "sessions" / str(uid))
    assert mine.st_uid == uid and stat.S_IMODE(mine.st_mode) == 0o700


# -- issue 8: the server refused the host (HOST_DISABLED): every kept session goes --

def refused_host():
    from otpme_auth import LoginRefused
    from otpme_auth_sessionkeep.keys import HOST_DISABLED

    def collect(ctx):
        ctx.stash[HOST_DISABLED] = "host_disabled"
        raise LoginRefused("pre-auth refused: 403 host_disabled")
    return make_plugin("online", otpme_auth_collect_credentials=collect,
                       otpme_auth_verify=lambda ctx: None)


def test_refused_host_drops_every_kept_session(run_login, tmp_path, system_user):
    users = [setup(tmp_path, system_user) for _ in range(2)]
    for user, uid, line, path in users:
        assert run_login(plugins(stand_in(answer(user))), line, user=user, answers=[PW]).ok
        assert os.path.exists(path)
    foreign = tmp_path / "run" / "not-a-uid" / "otpme-auth"
    foreign.mkdir(parents=True)
    (foreign / "session").write_text("{}")
    user, uid, line, path = users[0]
    result = run_login(plugins(refused_host()), line, user=user, answers=[PW])
    assert result.code == "AUTH_ERR"
    for _, _, _, path in users:
        assert not os.path.exists(path)
    assert (foreign / "session").exists()     # not this template with a uid: not touched
    assert any("(host_disabled): 2 kept session(s) removed" in x for x in result.log)


def test_dropping_sessions_never_follows_a_symlink(run_login, tmp_path, system_user):
    user, uid, line, path = setup(tmp_path, system_user)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "session").write_text("keep me")
    run_dir = os.path.dirname(os.path.dirname(path))
    os.makedirs(run_dir)
    os.symlink(str(victim), os.path.join(run_dir, "otpme-auth"))
    result = run_login(plugins(refused_host()), line, user=user, answers=[PW])
    assert result.code == "AUTH_ERR"
    assert (victim / "session").read_text() == "keep me"
    assert any("kept sessions could not all be removed" in x and "symlink" in x
               for x in result.log), result.log


def test_no_host_refusal_no_drop(run_login, tmp_path, system_user):
    user, uid, line, path = setup(tmp_path, system_user)
    assert run_login(plugins(stand_in(answer(user))), line, user=user, answers=[PW]).ok
    from otpme_auth import deny
    refusing = make_plugin("online", otpme_auth_collect_credentials=lambda ctx: ctx.ask_authtok(),
                           otpme_auth_verify=lambda ctx: deny("wrong_credentials"))
    assert run_login(plugins(refusing), line, user=user, answers=[PW]).code == "AUTH_ERR"
    assert os.path.exists(path)
