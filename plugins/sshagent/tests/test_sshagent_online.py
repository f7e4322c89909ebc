"""sshagent + online against a real realm server, a real ssh-agent, through real libpam."""

import os
import pwd
import re

import pytest

from agentlib import Keys, RootDir, UserAgent, need_tools

SEQUENCE = ("authenticate", "setcred", "acct_mgmt", "open_session", "close_session")
PW = "correct horse battery"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    need_tools()
    return Keys(str(tmp_path_factory.mktemp("keys")))


@pytest.fixture
def rootdir():
    d = RootDir()
    yield d
    d.cleanup()


@pytest.fixture
def site(realm, pam_harness, system_user, keys, rootdir):
    """A user with an ssh token (ed25519) and a password token, allowed on host h1."""
    class Site:
        pass
    s = Site()
    s.user = system_user()
    s.realm, s.pam, s.keys = realm, pam_harness, keys
    realm.add_user(s.user, PW)
    realm.admin("token", "add", "--type", "ssh", "%s/ssh" % s.user, keys.public["ed25519"])
    jotp = realm.add_host("h1", tokens=["%s/ssh" % s.user, "%s/pass" % s.user])
    realm.start()
    s.conf = realm.join("h1", jotp)
    s.agents = []

    def agent(*names):
        a = UserAgent(s.user, rootdir.path, [keys.private[n] for n in names])
        s.agents.append(a)
        return a
    s.agent = agent

    def run(options, sock, answers=(), functions=SEQUENCE, before=""):
        line = "%sonline host_config=%s %s" % (before, s.conf, options)
        pam_harness.service("login", pam_harness.line(line), pam_harness.line(line, type="account"),
                            "account required pam_permit.so", pam_harness.line(line, type="session"))
        n = len(pam_harness.read_log())
        result = pam_harness.run("login", s.user, *functions, answers=answers,
                                 env={"SSH_AUTH_SOCK": sock or ""})
        result.new = pam_harness.read_log()[n:]
        return result
    s.run = run
    yield s
    for a in s.agents:
        a.stop()


def refusals(site, token):
    return re.findall(r"login refused user=%s host=h1 token=%s" % (site.user, re.escape(token)),
                      site.realm.server_log())


def logged_in_with(site, token):
    return "login ok user=%s host=h1 token=%s/%s" % (site.user, site.user, token) in site.realm.server_log()


def test_agent_key_logs_in_without_a_prompt(site):
    agent = site.agent("ed25519")
    result = site.run("sshagent", agent.sock)
    assert result.ok, (result, result.new)
    assert "Password" not in result.stdout + result.stderr  # nothing was asked
    assert any("signed the server's challenge with the ssh-ed25519 key" in l for l in result.new)
    assert logged_in_with(site, "ssh"), result.new


def test_sshagent_before_online_on_the_line_answers_too(site):
    """The line's order does not matter: the agent answers in credentials_collected, after
    online's collect_credentials brought the challenge (docs/hooks.md)."""
    agent = site.agent("ed25519")
    result = site.run("", agent.sock, before="sshagent ")
    assert result.ok, (result, result.new)
    assert "Password" not in result.stdout + result.stderr
    assert logged_in_with(site, "ssh"), result.new


def test_send_password_false_never_sends_what_is_typed(site):
    agent = site.agent("ecdsa256")  # not the token's key
    result = site.run("sshagent send_password=false", agent.sock, answers=[PW])
    assert result.code == "AUTH_ERR"
    assert any("send_password=false" in l for l in result.new)
    # the server never saw an auth request with the typed password
    assert "token=%s/pass" % site.user not in site.realm.server_log()
    assert not any(PW in l for l in result.new)


def test_auto_without_the_key_falls_back_to_the_password(site):
    agent = site.agent("rsa")
    result = site.run("use_ssh_agent=auto", agent.sock, answers=[PW])
    assert result.ok, result.new
    assert logged_in_with(site, "pass")


def test_use_ssh_agent_true_refuses_before_any_prompt_without_an_agent(site):
    result = site.run("use_ssh_agent=true", None, answers=[PW])
    assert result.code == "AUTH_ERR"
    assert any("use_ssh_agent=true: no ssh agent" in l for l in result.new)
    assert "Password" not in result.output  # refused before any prompt
    assert "login refused user=%s" % site.user not in site.realm.server_log()


def test_use_ssh_agent_true_refuses_a_password_login(site):
    agent = site.agent("rsa")  # an agent, but not with the token's key
    result = site.run("use_ssh_agent=true", agent.sock, answers=[PW])
    assert result.code == "AUTH_ERR"
    assert any("not made with the agent's key" in l for l in result.new)


def test_use_ssh_agent_false_never_asks_the_agent(site):
    agent = site.agent("ed25519")
    result = site.run("use_ssh_agent=false", agent.sock, answers=[PW])
    assert result.ok
    assert logged_in_with(site, "pass")


@pytest.mark.parametrize("kind", ["ecdsa384", "ecdsa521", "rsa"])
def test_other_key_types_online(site, kind):
    site.realm.admin("token", "add", "--type", "ssh", "%s/%s" % (site.user, kind), site.keys.public[kind])
    site.realm.admin("host", "add_token", "h1", "%s/%s" % (site.user, kind))
    agent = site.agent(kind)
    result = site.run("sshagent", agent.sock)
    assert result.ok, result.new
    assert logged_in_with(site, kind)


def test_start_ssh_agent_at_session_open_and_stop_at_close(site):
    uid = pwd.getpwnam(site.user).pw_uid
    runtime = "/run/user/%d" % uid
    os.makedirs(runtime, mode=0o700, exist_ok=True)
    os.chown(runtime, uid, -1)
    try:
        agent = site.agent("ed25519")
        # auto: the server lists an ssh key for the user; the login's own agent is not
        # in the PAM environment (it came from the application), so one is started.
        result = site.run("sshagent start_ssh_agent=auto", agent.sock)
        assert result.ok, (result.output, result.new)
        started = [l for l in result.new if "started ssh-agent" in l]
        assert started, result.new
        pid = int(re.search(r"started ssh-agent (\d+)", started[0]).group(1))
        assert any("stopped ssh-agent %d" % pid in l for l in result.new)
        assert not os.path.exists("/proc/%d" % pid) or open("/proc/%d/stat" % pid).read().split()[2] == "Z"
        assert not [f for f in os.listdir(runtime) if f.startswith("otpme-ssh-agent")]
        # Never two agents for one session: a second open_session on the same handle
        # finds ours in the PAM environment.
        result = site.run("sshagent start_ssh_agent=true", agent.sock, functions=(
            "authenticate", "open_session", "open_session", "close_session"))
        assert result.ok, result.new
        assert len([l for l in result.new if "started ssh-agent" in l]) == 1
        assert any("already has an ssh agent" in l for l in result.new)
        assert len([l for l in result.new if "stopped ssh-agent" in l]) == 1
        # false: none
        result = site.run("sshagent start_ssh_agent=false", agent.sock)
        assert result.ok and not any("started ssh-agent" in l for l in result.new)
    finally:
        for f in os.listdir(runtime):
            os.unlink(os.path.join(runtime, f))
        os.rmdir(runtime)


def test_a_replayed_signature_is_refused(site, run_login, make_plugin, monkeypatch):
    """A signature the agent gave for one login does not log in again (the server's
    nonce is single-use and bound to the login): a responder that answers the next
    challenge with the recorded signature is refused."""
    import otpme_auth_online as online
    import otpme_auth_sshagent as sshagent
    from otpme_auth import Secret
    from otpme_auth_sshagent.keys import CHALLENGE_RESPONSE, CHALLENGES, SSHAGENT_KEYS

    recorded = {}

    def record(ctx, options):  # after sshagent's on the line: its answer is there
        recorded["keys"] = ctx.stash[SSHAGENT_KEYS]
        recorded["response"] = ctx.stash[CHALLENGE_RESPONSE]["response"].reveal()

    def offer(ctx, options):
        ctx.stash[SSHAGENT_KEYS] = recorded["keys"]

    def replay(ctx, options):
        (method,) = [m for m in ctx.stash[CHALLENGES] if m["type"] == "ssh"]
        ctx.stash[CHALLENGE_RESPONSE] = {"challenge_id": method["challenge_id"],
                                         "response": Secret(recorded["response"], "plugin")}

    agent = site.agent("ed25519")
    monkeypatch.setenv("SSH_AUTH_SOCK", agent.sock)
    plugins = {"online": online, "sshagent": sshagent,
               "recorder": make_plugin("recorder", otpme_auth_credentials_collected=record),
               "replayer": make_plugin("replayer", otpme_auth_pre_auth=offer,
                                       otpme_auth_credentials_collected=replay)}
    line = "online host_config=%s" % site.conf
    first = run_login(plugins, line + " sshagent recorder", user=site.user)
    assert first.ok and first.prompts == [] and recorded["response"]
    again = run_login(plugins, line + " replayer send_password=false", user=site.user)
    assert again.code == "AUTH_ERR"
    assert "wrong_credentials" in again.ctx.decisions[0].reason
    assert len(refusals(site, "-")) == 1
