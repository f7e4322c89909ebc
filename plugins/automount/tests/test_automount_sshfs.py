"""automount's sshfs backend end to end: a real sshd on 127.0.0.1 (public key, sftp), the
user's own key, real libpam, the mount in a private mount namespace; and a hung server
(a listener that never says a word) cut off by ``automount_timeout``."""

import os
import pathlib
import pwd
import tempfile
import shutil
import socket
import subprocess
import time

import pytest

from otpme_auth.testing.procs import free_port, stop_process, wait_for_port

from test_automount_pam import PW, Session, no_argv_holds, wait_for_session

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("sshfs") or not os.path.exists("/usr/sbin/sshd")
    or not os.path.exists("/dev/fuse"), reason="needs root, sshfs, sshd and /dev/fuse")


@pytest.fixture
def base():
    """A directory the test user can walk through (pytest's temp dirs are root's 0700)."""
    d = tempfile.mkdtemp(prefix="otpme-automount-", dir="/var/tmp")
    os.chmod(d, 0o755)
    yield pathlib.Path(d)
    shutil.rmtree(d, ignore_errors=True)


def prepare(pam_harness, system_user, realm, tmp_path, shares, timeout=20):
    # A password only so that sshd does not call the account locked (never used).
    user = system_user(password=os.urandom(12).hex(), home=str(tmp_path / "home"))
    os.makedirs(tmp_path / "home", mode=0o700)
    entry = pwd.getpwnam(user)
    os.chown(entry.pw_dir, entry.pw_uid, entry.pw_gid)
    realm.add_user(user, PW)
    jotp = realm.add_host("h1", tokens=["%s/pass" % user])
    for name, args in shares.items():
        realm.admin("share", "add", name, *args)
        realm.admin("share", "add_node", name, "h1")
        realm.admin("user", "add_share", user, name)
    realm.admin("user", "enable_auto_mount", user)
    realm.start()
    conf = realm.join("h1", jotp)
    root = str(tmp_path / "media" / user)
    os.makedirs(root, mode=0o755)
    os.chmod(tmp_path / "media", 0o755)
    state = str(tmp_path / "state")
    common = ("automount automount_root=%s/media/%%u automount_state_dir=%s "
              "automount_timeout=%s" % (tmp_path, state, timeout))
    pam_harness.service("login", pam_harness.line("host_config=%s connect_timeout=1 %s"
                                                  % (conf, common)),
                        pam_harness.line(common, type="session"))
    return user, entry, root, os.path.join(state, user)


@pytest.fixture
def sshd(base):
    d = base / "sshd"
    d.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host_key")],
                   check=True)
    os.makedirs("/run/sshd", exist_ok=True)
    port = free_port()
    auth_keys = d / "authorized_keys"
    auth_keys.write_text("")
    os.chmod(auth_keys, 0o644)
    (d / "sshd_config").write_text(
        "ListenAddress 127.0.0.1\nHostKey %s\nUsePAM no\nPubkeyAuthentication yes\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nStrictModes no\n"
        "AuthorizedKeysFile %s\nSubsystem sftp internal-sftp\nPidFile none\n"
        % (d / "host_key", auth_keys))
    proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(d / "sshd_config"),
                             "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=open(d / "log", "w"))
    assert wait_for_port(proc, port)
    yield {"port": port, "authorized_keys": auth_keys, "log": d / "log",
           "host_key": (d / "host_key.pub").read_text().split()[:2]}
    stop_process(proc)


def test_sshfs_against_a_real_sshd(pam_harness, system_user, realm, base, ns, sshd):
    tmp_path = base
    export = tmp_path / "export"
    export.mkdir()
    (export / "remote.txt").write_text("served over sftp\n")
    user, entry, root, state = prepare(
        pam_harness, system_user, realm, tmp_path,
        {"remote": ("--type", "sshfs", "--source", "%%u@127.0.0.1:%s" % export,
                    "--options", "port=%d" % sshd["port"])})
    # The user's own key and known_hosts, in their home.
    ssh_dir = os.path.join(entry.pw_dir, ".ssh")
    os.makedirs(ssh_dir, mode=0o700)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                    os.path.join(ssh_dir, "id_ed25519")], check=True)
    with open(os.path.join(ssh_dir, "id_ed25519.pub")) as f:
        sshd["authorized_keys"].write_text(f.read())
    with open(os.path.join(ssh_dir, "known_hosts"), "w") as f:
        f.write("[127.0.0.1]:%d %s\n" % (sshd["port"], " ".join(sshd["host_key"])))
    os.chmod(export, 0o755)
    for dirpath, dirs, files in os.walk(entry.pw_dir):
        for name in [dirpath] + [os.path.join(dirpath, x) for x in files]:
            os.chown(name, entry.pw_uid, entry.pw_gid)
    s = Session(pam_harness, ns, "login", user)
    wait_for_session(state, s.proc.pid, s.proc)
    mounts = ns.mounts_below(root)
    assert list(mounts) == [root + "/remote"], "\n".join(pam_harness.read_log()) + sshd["log"].read_text()
    fstype, opts = mounts[root + "/remote"]
    assert fstype == "fuse.sshfs" and {"nosuid", "nodev"} <= opts
    listing = subprocess.run(ns.argv("setpriv", "--reuid", str(entry.pw_uid), "--regid",
                                     str(entry.pw_gid), "--init-groups", "cat",
                                     root + "/remote/remote.txt"),
                             capture_output=True, text=True)
    assert listing.stdout == "served over sftp\n", listing.stderr
    assert no_argv_holds(PW)  # sshfs and its ssh are running now
    s.close()
    assert ns.mounts_below(root) == {}
    assert PW not in "\n".join(pam_harness.read_log())


def test_a_hung_mount_is_cut_off_by_automount_timeout(pam_harness, system_user, realm,
                                                      base, ns):
    tmp_path = base
    # A server that accepts the connection and never says a word (a dead NFS/ssh server).
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    port = silent.getsockname()[1]
    user, entry, root, state = prepare(
        pam_harness, system_user, realm, tmp_path,
        {"hung": ("--type", "sshfs", "--source", "127.0.0.1:/", "--options", "port=%d" % port),
         "fast": ("--type", "tmpfs")}, timeout=2)
    started = time.monotonic()
    s = Session(pam_harness, ns, "login", user)
    wait_for_session(state, s.proc.pid, s.proc)
    opened_after = time.monotonic() - started
    # The session opened with the share that could be mounted; the hung one was killed.
    assert list(ns.mounts_below(root)) == [root + "/fast"]
    log = "\n".join(pam_harness.read_log())
    assert "did not finish within 2s (automount_timeout): killed" in log
    assert opened_after < 60  # far below an unbounded hang, whatever the machine's load
    s.close()
    assert ns.mounts_below(root) == {}
    silent.close()
