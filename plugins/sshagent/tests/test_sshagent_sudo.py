"""The real sudo, run by an unprivileged user, with a key in the user's agent.

sudo runs in a private mount namespace (unshare) whose /etc/pam.d, /etc/sudoers.d and
/run/sudo are temp copies bound over the host's: the host's files never change.  The
user's /etc/pam.d/sudo is `auth sufficient` our module with authorized_keys=, then
pam_deny: so the only way in is the agent's key.
"""

import os
import pwd
import shutil
import subprocess

import pytest

from agentlib import Keys, RootDir, UserAgent, need_tools
from otpme_auth.testing import skip_or_fail

SCRIPT = """set -e
mount --bind "$1/pam.d" /etc/pam.d
mount --bind "$1/sudoers.d" /etc/sudoers.d
mount --bind "$1/run-sudo" /run/sudo
exec setpriv --reuid "$2" --regid "$3" --init-groups env -i PATH=/usr/bin:/bin SSH_AUTH_SOCK="$4" \
    sudo -S -k -p "sudo-prompt:" /usr/bin/id -un
"""


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    need_tools()
    return Keys(str(tmp_path_factory.mktemp("keys")))


def need_sudo():
    missing = [t for t in ("sudo", "unshare", "setpriv") if shutil.which(t) is None]
    if missing:
        skip_or_fail("needs %s" % ", ".join(missing))


def sudo_as(user, pam, tmp_path, options, sock):
    ns = tmp_path / "ns"
    for d in ("pam.d", "sudoers.d", "run-sudo"):
        (ns / d).mkdir(parents=True, exist_ok=True)
    os.chmod(ns / "run-sudo", 0o711)
    shutil.copytree("/etc/pam.d", ns / "pam.d", dirs_exist_ok=True)
    (ns / "pam.d" / "sudo").write_text("\n".join([
        pam.line(options, control="sufficient"),
        "auth required pam_deny.so",
        "account required pam_permit.so",
        "session required pam_permit.so", ""]))
    rule = ns / "sudoers.d" / "otpme-test"
    rule.write_text("%s ALL=(root) /usr/bin/id\n" % user)
    os.chmod(rule, 0o440)
    pw = pwd.getpwnam(user)
    script = tmp_path / "sudo.sh"
    script.write_text(SCRIPT)
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", str(script),
                           str(ns), str(pw.pw_uid), str(pw.pw_gid), sock or ""],
                          input="not-the-password\n", capture_output=True, text=True, timeout=60)


def test_real_sudo_with_the_agent_key(pam_harness, system_user, keys, tmp_path):
    need_sudo()
    user = system_user()
    root = RootDir()
    agent = UserAgent(user, root.path, [keys.private["ed25519"]])
    try:
        path = root.write("keys/%s" % user, keys.public["ed25519"] + "\n")
        proc = sudo_as(user, pam_harness, tmp_path, "authorized_keys=%s/keys/%%u" % root.path, agent.sock)
        assert proc.returncode == 0, (proc.stdout, proc.stderr, pam_harness.read_log())
        assert proc.stdout.strip() == "root"
        assert "sudo-prompt:" not in proc.stderr  # no password was asked
        # A key file the user could change: refused, and pam_deny then denies.
        os.chown(path, pwd.getpwnam(user).pw_uid, -1)
        n = len(pam_harness.read_log())
        proc = sudo_as(user, pam_harness, tmp_path, "authorized_keys=%s/keys/%%u" % root.path, agent.sock)
        assert proc.returncode != 0 and proc.stdout.strip() != "root"
        assert any("refused: %s is owned by uid" % path in l for l in pam_harness.read_log()[n:])
        # No agent: refused too.
        os.chown(path, 0, -1)
        proc = sudo_as(user, pam_harness, tmp_path, "authorized_keys=%s/keys/%%u" % root.path, None)
        assert proc.returncode != 0 and proc.stdout.strip() != "root"
    finally:
        agent.stop()
        root.cleanup()
