"""Offline ssh logins (issue 13): a real realm, real ssh-agents, real libpam.

An online login with the agent's key writes the token's ssh record (offline plugin,
``cache_login_tokens``); with the server stopped, the agent signs a fresh local nonce
and the offline plugin checks it against the cached, authenticated public key.
"""

import os
import pwd
import shutil
import socket
import struct
import tempfile
import threading

import pytest

from agentlib import KEY_SPECS, Keys, RootDir, UserAgent, need_tools

SEQUENCE = ("authenticate", "setcred", "acct_mgmt", "open_session", "close_session")
PW = "correct horse battery"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    need_tools()
    return Keys(str(tmp_path_factory.mktemp("keys")))


@pytest.fixture
def site(realm, pam_harness, system_user, keys):
    """A user with one ssh token per key type (offline allowed), joined host h1."""
    class Site:
        pass
    s = Site()
    s.rootdir = RootDir()
    s.user = system_user()
    s.realm, s.pam, s.keys = realm, pam_harness, keys
    realm.add_user(s.user, PW)
    tokens = []
    for kind in KEY_SPECS:
        token = "%s/%s" % (s.user, kind)
        realm.admin("token", "add", "--type", "ssh", token, keys.public[kind])
        realm.admin("token", "enable_offline", token)
        tokens.append(token)
    jotp = realm.add_host("h1", tokens=tokens + ["%s/pass" % s.user])
    realm.start()
    s.conf = realm.join("h1", jotp)
    s.cache_dir = os.path.join(pam_harness.dir, "offline")
    s.agents = []

    def agent(*names):
        a = UserAgent(s.user, s.rootdir.path, [keys.private[n] for n in names])
        s.agents.append(a)
        return a
    s.agent = agent

    def run(sock, answers=(), functions=SEQUENCE, extra=""):
        line = ("online host_config=%s connect_timeout=1 cache_login_tokens offline_cache_dir=%s "
                "sshagent %s" % (s.conf, s.cache_dir, extra))
        pam_harness.service("login", pam_harness.line(line),
                            pam_harness.line(line, type="account"),
                            pam_harness.line(line, type="session"))
        n = len(pam_harness.read_log())
        result = pam_harness.run("login", s.user, *functions, answers=answers,
                                 env={"SSH_AUTH_SOCK": sock or ""})
        result.new = pam_harness.read_log()[n:]
        return result
    s.run = run
    yield s
    for a in s.agents:
        a.stop()
    s.rootdir.cleanup()


def record_path(site, kind):
    return os.path.join(site.cache_dir, site.user, "ssh.%s%%2F%s" % (site.user, kind))


def cache_online(site, kind):
    agent = site.agent(kind)
    result = site.run(agent.sock)
    assert result.ok, (result.output, result.new)
    assert os.path.exists(record_path(site, kind)), result.new
    return agent


def has(result, text):
    return any(text in line for line in result.new)


def no_traceback(result):
    assert "Traceback" not in result.output and not has(result, "Traceback")


def test_every_key_type_logs_in_offline_without_a_prompt(site):
    """ed25519, ecdsa 256/384/521 and rsa (rsa-sha2-512): cached by an online login,
    then the whole PAM sequence offline, nothing asked."""
    agents = {kind: cache_online(site, kind) for kind in KEY_SPECS}
    st = os.stat(record_path(site, "ed25519"))
    assert (st.st_uid, st.st_mode & 0o777) == (0, 0o600)
    key = site.cache_dir + ".ssh-key"
    assert (os.stat(key).st_uid, os.stat(key).st_mode & 0o777) == (0, 0o600)
    site.realm.stop()
    for kind, agent in agents.items():
        result = site.run(agent.sock)
        assert result.ok, (kind, result.output, result.new)
        assert "Password" not in result.output, kind   # nothing was asked
        assert has(result, "the agent signed the offline cache's challenge"), result.new
        assert has(result, "offline ssh login of %s: the agent's %s key" % (
            site.user, site.keys.public[kind].split()[0])), result.new
        no_traceback(result)
    # use_ssh_agent=true takes an offline login made by the agent's key
    result = site.run(agents["ed25519"].sock, extra="use_ssh_agent=true")
    assert result.ok, result.new
    # The record holds the public key and the answer, no secret and no session.
    with open(record_path(site, "ed25519"), "rb") as fh:
        data = fh.read()
    assert b'"session":null' in data and site.keys.public["ed25519"].split()[1].encode() in data


class ProxyAgent(threading.Thread):
    """A socket in front of a real ssh-agent (as the test's root): ``mode`` "sha256" asks
    the agent for rsa-sha2-256, "sha1" for ssh-rsa (SHA-1), "replay" answers every sign
    request after the first with the first signature."""

    def __init__(self, real_sock, path, owner_uid, mode):
        super().__init__(daemon=True)
        self.real, self.mode, self.recorded = real_sock, mode, None
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        os.chown(path, owner_uid, -1)
        self.srv.listen(8)
        self.start()

    @staticmethod
    def _msg(conn):
        head = b""
        while len(head) < 4:
            chunk = conn.recv(4 - len(head))
            if not chunk:
                raise OSError("closed")
            head += chunk
        n = struct.unpack(">I", head)[0]
        body = b""
        while len(body) < n:
            chunk = conn.recv(n - len(body))
            if not chunk:
                raise OSError("closed")
            body += chunk
        return body

    def run(self):
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            real = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                real.connect(self.real)
                while True:
                    msg = self._msg(conn)
                    if msg[0] == 13 and self.mode in ("sha256", "sha1"):
                        msg = msg[:-4] + struct.pack(">I", 2 if self.mode == "sha256" else 0)
                    real.sendall(struct.pack(">I", len(msg)) + msg)
                    answer = self._msg(real)
                    if msg[0] == 13 and self.mode == "replay":
                        if self.recorded is None:
                            self.recorded = answer
                        answer = self.recorded
                    conn.sendall(struct.pack(">I", len(answer)) + answer)
            except OSError:
                pass
            finally:
                real.close()
                conn.close()

    def stop(self):
        self.srv.close()


def proxy(site, agent, mode, owner=None):
    uid = pwd.getpwnam(site.user).pw_uid
    path = os.path.join(agent.dir, "proxy-%s" % mode)
    return path, ProxyAgent(agent.sock, path, uid if owner is None else owner, mode)


def test_rsa_sha2_256_is_accepted_offline(site):
    agent = cache_online(site, "rsa")
    site.realm.stop()
    path, p = proxy(site, agent, "sha256")
    try:
        result = site.run(path)
    finally:
        p.stop()
    assert result.ok, (result.output, result.new)
    assert has(result, "offline ssh login of %s: the agent's ssh-rsa key" % site.user)


def test_refusals_offline_each_with_a_clear_line(site):
    """No agent, the wrong key, a socket of another user, a symlinked socket path, an
    ssh-rsa (SHA-1) signature, a replayed signature: AUTH_ERR, each with its log line,
    and the offline plugin's own line; never a password prompt that could log in."""
    ed = cache_online(site, "ed25519")
    rsa = cache_online(site, "rsa")
    os.unlink(record_path(site, "rsa"))   # rsa below is the "wrong key" of this user...
    site.realm.stop()

    def refused(result, *lines):
        assert result.code == "AUTH_ERR", (result.code, result.output, result.new)
        for line in lines:
            assert has(result, line), (line, "\n".join(result.new))
        no_traceback(result)

    # no agent: online then asks (offline's password caches need what is typed)
    refused(site.run(None, answers=["a guess"]),
            "cannot answer the offline ssh challenge of %s: no ssh agent: SSH_AUTH_SOCK is not "
            "set" % site.user,
            "the ssh agent gave no signature for the cached key of token %s/ed25519" % site.user)
    # an agent with another key than the cached one
    refused(site.run(rsa.sock, answers=["a guess"]),
            "the agent holds none of the cached ssh keys of %s" % site.user,
            "the ssh agent gave no signature")
    # the socket belongs to another user
    path, p = proxy(site, ed, "plain", owner=65534)
    try:
        refused(site.run(path, answers=["a guess"]), "belongs to uid 65534", "gave no signature")
    finally:
        p.stop()
    # a symlink in the socket's path
    link_dir = tempfile.mkdtemp(dir=site.rootdir.path)
    os.chown(link_dir, pwd.getpwnam(site.user).pw_uid, -1)   # the user's own directory
    link = os.path.join(link_dir, "agent.sock")
    os.symlink(ed.sock, link)
    refused(site.run(link, answers=["a guess"]),
            "has a symlink at %r: refused (not followed)" % link, "gave no signature")
    shutil.rmtree(link_dir)
    # ssh-rsa (SHA-1): the rsa key cached again, the agent asked for SHA-1
    site.realm.start()
    cache_online(site, "rsa")
    site.realm.stop()
    path, p = proxy(site, site.agents[-1], "sha1")
    try:
        refused(site.run(path, answers=["a guess"]), "an ssh-rsa (SHA-1) signature: refused",
                "gave no signature")
    finally:
        p.stop()
    # a replayed signature: the first offline login succeeds, its signature is
    # answered again to the next login's fresh nonce
    path, p = proxy(site, ed, "replay")
    try:
        first = site.run(path)
        assert first.ok, first.new
        refused(site.run(path, answers=["a guess"]),
                "offline ssh login of %s refused: the signature does not verify with the "
                "ssh-ed25519 key" % site.user)
    finally:
        p.stop()
    # and the real agent still logs in
    assert site.run(ed.sock).ok


def test_a_tampered_record_cannot_add_a_key(site):
    """Root-only-writable is not enough: a record whose public key was replaced (by
    someone who can write the cache but not read the host key) does not authenticate,
    so the planted key does not log in; nor does a record planted for another user."""
    ed = cache_online(site, "ed25519")
    site.realm.stop()
    path = record_path(site, "ed25519")
    with open(path, "rb") as fh:
        original = fh.read()
    planted = site.keys.public["ecdsa256"].split()
    real = site.keys.public["ed25519"].split()
    forged = original.replace(("%s %s" % (real[0], real[1])).encode(),
                              ("%s %s" % (planted[0], planted[1])).encode())
    assert forged != original
    with open(path, "wb") as fh:
        fh.write(forged)
    attacker = site.agent("ecdsa256")
    result = site.run(attacker.sock, answers=["a guess"])
    assert result.code == "AUTH_ERR", result.new
    assert has(result, "does not authenticate with this host's key"), result.new
    # the original record, intact, still works
    with open(path, "wb") as fh:
        fh.write(original)
    assert site.run(ed.sock).ok


def test_the_record_follows_the_server(site):
    """Offline disabled for the token: the next online login removes its record; the host
    disabled: every record goes (docs/offline.md, "When the server says otherwise")."""
    ed = cache_online(site, "ed25519")
    cache_online(site, "ecdsa256")
    site.realm.admin("token", "disable_offline", "%s/ed25519" % site.user)
    result = site.run(ed.sock)
    assert result.ok, result.new
    assert not os.path.exists(record_path(site, "ed25519"))
    assert has(result, "offline cache of %s token %s/ed25519 removed" % (site.user, site.user))
    assert os.path.exists(record_path(site, "ecdsa256"))
    site.realm.admin("host", "disable", "h1")
    result = site.run(ed.sock, answers=["a guess"])
    assert result.code != "SUCCESS"
    assert not os.path.exists(record_path(site, "ecdsa256")), result.new
    assert has(result, "offline cache(s) of 1 user(s) removed"), result.new


def test_forty_parallel_offline_ssh_logins(site):
    """40 parallel offline ssh logins of one record through real libpam: each succeeds
    (the record is rewritten under its lock), the record still authenticates after."""
    from concurrent.futures import ThreadPoolExecutor
    ed = cache_online(site, "ed25519")
    site.realm.stop()
    line = ("online host_config=%s connect_timeout=1 cache_login_tokens offline_cache_dir=%s "
            "sshagent" % (site.conf, site.cache_dir))
    site.pam.service("login", site.pam.line(line))

    def one(_):
        return site.pam.run("login", site.user, "authenticate", env={"SSH_AUTH_SOCK": ed.sock})
    with ThreadPoolExecutor(40) as pool:
        results = list(pool.map(one, range(40)))
    assert [r.code for r in results] == ["SUCCESS"] * 40, [r.output for r in results
                                                           if not r.ok][:3]
    assert site.run(ed.sock).ok
