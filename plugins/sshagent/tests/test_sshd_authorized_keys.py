"""A real sshd on 127.0.0.1 takes the user's keys from the realm (AuthorizedKeysCommand).

sshd runs ``otpme-get-authorized-keys %u --config HOST.CONF`` (the online plugin's
command, seed 001 §26): the key of the user's ssh token on this host logs in, another
key does not, and a token taken off the host no longer logs in.
"""

import os
import shutil
import subprocess
import sys

import pytest

from agentlib import Keys, need_tools
from otpme_auth.testing.procs import free_port, stop_process, wait_for_port
from otpme_auth.testing import skip_or_fail


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    need_tools()
    return Keys(str(tmp_path_factory.mktemp("keys")))


def need_sshd():
    if not os.path.exists("/usr/sbin/sshd") or shutil.which("ssh") is None:
        skip_or_fail("needs openssh-server and openssh-client")


def ssh(port, user, key):
    return subprocess.run(["ssh", "-F", "/dev/null", "-i", key, "-o", "IdentitiesOnly=yes",
                           "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                           "-o", "UserKnownHostsFile=/dev/null", "-o", "IdentityAgent=none",
                           "-p", str(port), "%s@127.0.0.1" % user, "echo", "in-as-$(id -un)"],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_sshd_authorized_keys_command_from_the_realm(realm, system_user, keys, tmp_path):
    need_sshd()
    user = system_user(password="unused but unlocked")
    realm.add_user(user, "pw")
    realm.admin("token", "add", "--type", "ssh", "%s/ssh" % user, keys.public["ecdsa256"])
    jotp = realm.add_host("h1", tokens=["%s/ssh" % user])
    realm.start()
    conf = realm.join("h1", jotp)
    command = os.path.join(os.path.dirname(sys.executable), "otpme-get-authorized-keys")
    out = subprocess.run([command, user, "--config", conf], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.split() == keys.public["ecdsa256"].split()[:2]
    d = tmp_path / "sshd"
    d.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-N", "", "-t", "ed25519", "-f", str(d / "hostkey")], check=True)
    port = free_port()
    (d / "sshd_config").write_text("\n".join([
        "Port %d" % port, "ListenAddress 127.0.0.1", "HostKey %s" % (d / "hostkey"),
        "PidFile %s" % (d / "sshd.pid"), "UsePAM no", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "PubkeyAuthentication yes", "AuthorizedKeysFile none",
        "AuthorizedKeysCommand %s %%u --config %s" % (command, conf),
        "AuthorizedKeysCommandUser root", "StrictModes no", ""]))
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(d / "sshd_config")],
                            stdout=subprocess.DEVNULL, stderr=open(d / "log", "w"))
    try:
        assert wait_for_port(proc, port), (d / "log").read_text()
        good = ssh(port, user, keys.private["ecdsa256"])
        assert good.returncode == 0 and "in-as-%s" % user in good.stdout, (good.stderr, (d / "log").read_text())
        assert ssh(port, user, keys.private["ed25519"]).returncode == 255
        realm.admin("host", "remove_token", "h1", "%s/ssh" % user)
        assert ssh(port, user, keys.private["ecdsa256"]).returncode == 255
    finally:
        stop_process(proc)


def test_a_refusing_server_gives_no_keys_and_says_why(realm, system_user, keys):
    """A disabled host: sshd's AuthorizedKeysCommand gets no keys, a one-line reason on
    stderr, no traceback."""
    user = system_user(password="unused but unlocked")
    realm.add_user(user, "pw")
    realm.admin("token", "add", "--type", "ssh", "%s/ssh" % user, keys.public["ed25519"])
    jotp = realm.add_host("h1", tokens=["%s/ssh" % user])
    realm.start()
    conf = realm.join("h1", jotp)
    realm.admin("host", "disable", "h1")
    command = os.path.join(os.path.dirname(sys.executable), "otpme-get-authorized-keys")
    out = subprocess.run([command, user, "--config", conf], capture_output=True, text=True)
    assert out.returncode == 1 and out.stdout == ""
    assert "Traceback" not in out.stderr
    assert "the server refused" in out.stderr and "host_disabled" in out.stderr, out.stderr
