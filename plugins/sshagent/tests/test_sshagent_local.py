"""sshagent_keys (no server, pam_ssh_agent_auth's way) through real libpam and a real ssh-agent.

pamtester runs as root, like sudo; the agent runs as the user and SSH_AUTH_SOCK comes
from the application's environment, as in sudo.  Every login runs the whole PAM
sequence an application runs: authenticate, setcred, acct_mgmt, open/close_session.
"""

import os
import pwd

import pytest

from agentlib import Keys, RootDir, Sha1Agent, UserAgent, need_tools

SEQUENCE = ("authenticate", "setcred", "acct_mgmt", "open_session", "close_session")


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
def agents(rootdir):
    started = []

    def make(user, *names, keys=None):
        a = UserAgent(user, rootdir.path, [keys.private[n] for n in names] if keys else ())
        started.append(a)
        return a
    yield make
    for a in started:
        a.stop()


def services(pam, options):
    pam.service("sudo", pam.line(options),
                "account required pam_permit.so", "session required pam_permit.so")


def run(pam, user, agent_sock, *functions):
    env = {"SSH_AUTH_SOCK": agent_sock} if agent_sock else {}
    if not agent_sock:
        env["SSH_AUTH_SOCK"] = ""
    return pam.run("sudo", user, *(functions or SEQUENCE), env=env)


def new_lines(pam, before):
    return pam.read_log()[before:]


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa256", "ecdsa384", "ecdsa521", "rsa"])
def test_every_accepted_key_type_logs_in(pam_harness, system_user, keys, rootdir, agents, kind):
    user = system_user()
    path = rootdir.write("keys/%s" % user, keys.public[kind] + "\n")
    services(pam_harness, "authorized_keys=%s/keys/%%u" % rootdir.path)
    agent = agents(user, kind, keys=keys)
    result = run(pam_harness, user, agent.sock)
    assert result.ok, (result, pam_harness.read_log())
    log = "\n".join(pam_harness.read_log())
    assert "authorized and signed a fresh nonce" in log
    assert os.path.exists(path)


def test_no_agent_wrong_key_and_empty_agent_are_refused(pam_harness, system_user, keys, rootdir, agents):
    user = system_user()
    rootdir.write("keys/%s" % user, keys.public["ed25519"] + "\n")
    services(pam_harness, "authorized_keys=%s/keys/%%u" % rootdir.path)
    n = len(pam_harness.read_log())
    assert run(pam_harness, user, None, "authenticate").code == "AUTH_ERR"
    assert any("SSH_AUTH_SOCK is not set" in line for line in new_lines(pam_harness, n))
    wrong = agents(user, "ecdsa256", "rsa", keys=keys)
    n = len(pam_harness.read_log())
    assert run(pam_harness, user, wrong.sock, "authenticate").code == "AUTH_ERR"
    assert any("holds none of the 1 authorized key" in line for line in new_lines(pam_harness, n))


def test_socket_of_another_user_is_refused(pam_harness, system_user, keys, rootdir, agents):
    user, other = system_user(), system_user()
    rootdir.write("keys/%s" % user, keys.public["ed25519"] + "\n")
    services(pam_harness, "authorized_keys=%s/keys/%%u" % rootdir.path)
    theirs = agents(other, "ed25519", keys=keys)
    # Make the other user's agent reachable by path, so only the ownership check stops it.
    os.chmod(theirs.dir, 0o755)
    n = len(pam_harness.read_log())
    assert run(pam_harness, user, theirs.sock).code == "AUTH_ERR"
    lines = new_lines(pam_harness, n)
    uid = pwd.getpwnam(other).pw_uid
    assert any("belongs to uid %d" % uid in line and "refused" in line for line in lines), lines


def test_symlink_in_the_socket_path_is_refused(pam_harness, system_user, keys, rootdir, agents):
    user = system_user()
    rootdir.write("keys/%s" % user, keys.public["ed25519"] + "\n")
    services(pam_harness, "authorized_keys=%s/keys/%%u" % rootdir.path)
    agent = agents(user, "ed25519", keys=keys)
    assert run(pam_harness, user, agent.sock, "authenticate").ok
    link_dir = os.path.join(rootdir.path, "link")
    os.symlink(agent.dir, link_dir)
    link_sock = os.path.join(rootdir.path, "sock-link")
    os.symlink(agent.sock, link_sock)
    for path in (os.path.join(link_dir, "agent.sock"), link_sock):
        n = len(pam_harness.read_log())
        assert run(pam_harness, user, path, "authenticate").code == "AUTH_ERR"
        assert any("symlink" in line and "not followed" in line
                   for line in new_lines(pam_harness, n)), path


@pytest.mark.parametrize("how", ["file owned by user", "file group-writable", "dir owned by user",
                                 "dir world-writable", "file under /tmp"])
def test_key_file_the_user_could_change_is_refused(pam_harness, system_user, keys, rootdir,
                                                    agents, tmp_path, how):
    user = system_user()
    uid = pwd.getpwnam(user).pw_uid
    key = keys.public["ed25519"] + "\n"
    if how == "file owned by user":
        path = rootdir.write("k/%s" % user, key, owner=uid)
    elif how == "file group-writable":
        path = rootdir.write("k/%s" % user, key, mode=0o664)
    elif how == "dir owned by user":
        path = rootdir.write("k/%s" % user, key)
        os.chown(os.path.dirname(path), uid, -1)
    elif how == "dir world-writable":
        path = rootdir.write("k/%s" % user, key)
        os.chmod(os.path.dirname(path), 0o777)
    else:
        path = str(tmp_path / "keys")
        with open(path, "w") as fh:
            fh.write(key)
    services(pam_harness, "authorized_keys=%s" % path)
    agent = agents(user, "ed25519", keys=keys)
    n = len(pam_harness.read_log())
    result = run(pam_harness, user, agent.sock, "authenticate")
    assert result.code == "AUTH_ERR"
    lines = new_lines(pam_harness, n)
    assert any("refused" in line and ("owned by uid" in line or "writable by" in line)
               for line in lines), lines


def test_user_owned_key_file_with_the_loud_option(pam_harness, system_user, keys, rootdir, agents):
    user = system_user()
    uid = pwd.getpwnam(user).pw_uid
    path = rootdir.write("k/%s" % user, keys.public["ed25519"] + "\n", owner=uid)
    services(pam_harness, "authorized_keys=%s allow_user_owned_authorized_keys_file" % path)
    agent = agents(user, "ed25519", keys=keys)
    n = len(pam_harness.read_log())
    assert run(pam_harness, user, agent.sock).ok
    assert any("WARNING" in line.upper() and "allow_user_owned_authorized_keys_file" in line
               for line in new_lines(pam_harness, n))


def test_sha1_rsa_signature_is_refused(pam_harness, system_user, keys, rootdir):
    user = system_user()
    uid = pwd.getpwnam(user).pw_uid
    rootdir.write("keys/%s" % user, keys.public["rsa"] + "\n")
    services(pam_harness, "authorized_keys=%s/keys/%%u" % rootdir.path)
    sock_dir = os.path.join(rootdir.path, "sha1")
    os.mkdir(sock_dir, 0o755)
    fake = Sha1Agent(os.path.join(sock_dir, "agent"), keys.private["rsa"], uid)
    try:
        n = len(pam_harness.read_log())
        assert run(pam_harness, user, fake.path, "authenticate").code == "AUTH_ERR"
        assert any("ssh-rsa (SHA-1) signature: refused" in line for line in new_lines(pam_harness, n))
    finally:
        fake.stop()


def test_authorized_keys_command(pam_harness, system_user, keys, rootdir, agents):
    user, runner = system_user(), system_user()
    keyfile = rootdir.write("cmdkeys", keys.public["ecdsa384"] + "\n")
    cmd = rootdir.write("bin/keys-for", "#!/bin/sh\n[ \"$1\" = %s ] && [ \"$(id -un)\" = %s ] "
                        "&& exec cat %s\nexit 1\n" % (user, runner, keyfile), mode=0o755)
    services(pam_harness, "authorized_keys_command=%s authorized_keys_command_user=%s" % (cmd, runner))
    agent = agents(user, "ecdsa384", keys=keys)
    assert run(pam_harness, user, agent.sock).ok, pam_harness.read_log()
    os.chmod(cmd, 0o777)
    n = len(pam_harness.read_log())
    assert run(pam_harness, user, agent.sock, "authenticate").code == "AUTH_ERR"
    assert any("authorized_keys_command" in line and "writable by" in line
               for line in new_lines(pam_harness, n))


def test_no_secret_in_the_log(pam_harness, system_user, keys, rootdir, agents):
    user = system_user()
    rootdir.write("keys/%s" % user, keys.public["ed25519"] + "\n")
    services(pam_harness, "authorized_keys=%s/keys/%%u debug" % rootdir.path)
    agent = agents(user, "ed25519", keys=keys)
    assert run(pam_harness, user, agent.sock).ok
    with open(keys.private["ed25519"]) as fh:
        private = "".join(fh.read().splitlines()[1:-1])
    log = "\n".join(pam_harness.read_log())
    assert private[:40] not in log
