"""automount end to end: a real server, real libpam (pam_wrapper + pam_python + pamtester),
real mounts (bind, tmpfs; sshfs in test_automount_sshfs.py) in a private mount namespace.

Every pamtester runs inside one namespace (``unshare --mount --propagation private``,
entered with ``nsenter``), so the mounts are real but never reach the host, and vanish
with the namespace.  ``findmnt`` (in that namespace) must show exactly the expected mounts
after each step.  A session is a pamtester ``authenticate open_session authenticate
close_session`` that waits for its second password between open and close: two of them
are two concurrent sessions of one user, as two ssh logins are."""

import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time

import pytest

from otpme_auth.testing.pam import PAM_WRAPPER

PW = "correct horse battery"
FAST_KDF = "offline_key_func=Argon2_i;min_mem:8,max_mem:8,iterations:1,threads:1"

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare")
                                or not shutil.which("nsenter"),
                                reason="real mounts need root, unshare and nsenter")


class Namespace:
    """A private mount namespace kept alive by a ``sleep``; commands enter it by PID.

    Its ``/tmp`` is an empty tmpfs (pam_wrapper's few ``/tmp/pam.X`` names are then all
    ours, whatever else runs on the machine) with pytest's temp root bound back in place,
    so the test's paths are the same inside and out."""

    def __init__(self, pytest_root):
        keep = tempfile.mkdtemp(prefix="otpme-automount-ns-", dir="/var/tmp")
        self.keep = keep
        script = ('mount --bind "$1" "$2" && mount -t tmpfs -o mode=1777 otpme-test-tmp /tmp'
                  ' && mkdir -m 700 "$1" && mount --bind "$2" "$1" && exec sleep infinity')
        self.proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "--",
                                      "sh", "-c", script, "sh", pytest_root, keep])
        for _ in range(500):
            out = subprocess.run(self.argv("findmnt", "-rn", "-o", "TARGET", pytest_root),
                                 capture_output=True, text=True).stdout
            if out.strip() == pytest_root:
                break
            assert self.proc.poll() is None, "the namespace did not start"
            time.sleep(0.01)

    def argv(self, *cmd):
        return ["nsenter", "-t", str(self.proc.pid), "-m", "--"] + list(cmd)

    def mounts_below(self, root):
        out = subprocess.run(self.argv("findmnt", "-rn", "-o", "TARGET,FSTYPE,OPTIONS"),
                             capture_output=True, text=True, check=True).stdout
        found = {}
        for line in out.splitlines():
            target, fstype, opts = line.split(" ")
            target = target.replace("\\x20", " ")
            if target.startswith(root + "/"):
                assert target not in found, "mounted twice: %s" % target
                found[target] = (fstype, set(opts.split(",")))
        return found

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        os.rmdir(self.keep)


@pytest.fixture
def ns(tmp_path_factory):
    n = Namespace(str(tmp_path_factory.getbasetemp().parent))
    yield n
    n.stop()


class Session:
    """One pamtester: authenticate, open_session, (wait), authenticate, close_session."""

    def __init__(self, harness, ns, service, user):
        env = dict(os.environ, LD_PRELOAD=PAM_WRAPPER, PAM_WRAPPER="1",
                   PAM_WRAPPER_SERVICE_DIR=harness.service_dir)
        self.proc = subprocess.Popen(
            ns.argv("pamtester", service, user, "authenticate", "open_session", "authenticate",
                    "close_session"),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=env)
        self.proc.stdin.write(PW + "\n")
        self.proc.stdin.flush()

    def close(self):
        out, _ = self.proc.communicate(PW + "\n", timeout=120)
        assert self.proc.returncode == 0, out
        return out


def no_argv_holds(secret):
    """No process on the machine has ``secret`` on its command line."""
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    assert secret.encode() not in f.read(), "secret on the argv of %s" % pid
            except OSError:
                pass
    return True


def wait_for_session(state_file, pid, proc):
    """Until the state file lists ``pid`` as a session (its open_session finished)."""
    for _ in range(3000):
        try:
            with open(state_file) as f:
                if any(s["pid"] == pid for s in json.load(f)["sessions"]):
                    return
        except (FileNotFoundError, ValueError):
            pass
        assert proc.poll() is None, proc.communicate()[0]
        time.sleep(0.02)
    raise AssertionError("the session did not open")


@pytest.fixture
def setup(pam_harness, system_user, realm, tmp_path):
    user = system_user()
    entry = pwd.getpwnam(user)
    realm.add_user(user, PW, offline=True, session_keep=True)
    jotp = realm.add_host("h1", tokens=["%s/pass" % user])
    realm.admin("host", "add", "h2")
    srv = tmp_path / "srv" / user
    srv.mkdir(parents=True)
    (srv / "hello.txt").write_text("hello from the bind share\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    a = realm.admin
    a("share", "add", "data", "--type", "bind", "--source", str(tmp_path / "srv" / "%u"),
      "--ro")
    a("share", "add", "scratch", "--type", "tmpfs", "--options", "size=1m,suid")
    a("share", "add", "notforh1", "--type", "tmpfs")
    a("share", "add", "escapes", "--type", "tmpfs", "--mountpoint", str(outside))
    a("share", "add", "linked", "--type", "tmpfs", "--mountpoint", "linked/inner")
    # No NFS here (no mount.nfs, no nfs in this kernel): one clear line, the rest mounts.
    a("share", "add", "nfsshare", "--type", "nfs", "--source", "127.0.0.1:/export/%u")
    for share in ("data", "scratch", "escapes", "linked", "nfsshare"):
        a("share", "add_node", share, "h1")
    a("share", "add_node", "notforh1", "h2")
    for share in ("data", "scratch", "notforh1", "escapes", "linked", "nfsshare"):
        a("user", "add_share", user, share)
    a("user", "enable_auto_mount", user)
    realm.start()
    conf = realm.join("h1", jotp)
    root = str(tmp_path / "media" / user)
    os.makedirs(root, mode=0o755)
    os.chmod(tmp_path / "media", 0o755)
    os.chmod(root, 0o755)
    # A symlink planted where a mount point's parent goes: never followed.
    os.symlink(str(outside), os.path.join(root, "linked"))
    state = str(tmp_path / "state")
    common = ("automount automount_root=%s/media/%%u automount_state_dir=%s "
              "automount_timeout=20" % (tmp_path, state))
    auth = ("try_first_pass host_config=%s connect_timeout=1 sessionkeep cache_login_tokens "
            "session_dir=%s/run/%%u/session offline_cache_dir=%s/offline %s %s"
            % (conf, tmp_path, tmp_path, FAST_KDF, common))
    pam_harness.service("login", pam_harness.line(auth),
                        pam_harness.line(common, type="session"))
    return {"user": user, "entry": entry, "root": root, "state": os.path.join(state, user),
            "outside": str(outside), "srv": str(srv)}


def test_online_offline_two_sessions_refusals(setup, pam_harness, ns, realm):
    s = setup
    root, user = s["root"], s["user"]
    assert ns.mounts_below(root) == {}
    # An online login mounts the host's shares; the others are refused.
    a = Session(pam_harness, ns, "login", user)
    wait_for_session(s["state"], a.proc.pid, a.proc)
    mounts = ns.mounts_below(root)
    assert set(mounts) == {root + "/data", root + "/scratch"}, mounts
    fstype, opts = mounts[root + "/scratch"]
    assert fstype == "tmpfs" and {"nosuid", "nodev"} <= opts  # suid asked, not allowed here
    assert {"ro", "nosuid", "nodev"} <= mounts[root + "/data"][1]
    data = os.stat(os.path.join(root, "data"))
    assert os.listdir(os.path.join(root, "scratch")) == []
    assert os.stat(os.path.join(root, "scratch")).st_uid == s["entry"].pw_uid
    assert os.listdir(s["outside"]) == []  # neither the escaping nor the symlinked share
    log = "\n".join(pam_harness.read_log())
    assert "outside" in log and "(automount_root)" in log
    assert "is a symlink or not a directory: refused" in log
    assert "notforh1" not in log  # the server never sent it to h1
    nfs_line = [x for x in log.splitlines() if "share nfsshare of %s not mounted" % user in x]
    assert nfs_line, log
    if not shutil.which("mount.nfs", path="/usr/sbin:/sbin"):
        assert "the mount helper mount.nfs is not installed" in nfs_line[0]
    # A second session of the same user: nothing mounted twice, nothing unmounted.
    b = Session(pam_harness, ns, "login", user)
    wait_for_session(s["state"], b.proc.pid, b.proc)
    assert set(ns.mounts_below(root)) == {root + "/data", root + "/scratch"}
    assert no_argv_holds(PW)
    a.close()
    assert set(ns.mounts_below(root)) == {root + "/data", root + "/scratch"}
    b.close()  # the last close unmounts
    assert ns.mounts_below(root) == {}
    # Offline: the cached session is restored and its shares mounted from the cache.
    realm.stop()
    c = Session(pam_harness, ns, "login", user)
    wait_for_session(s["state"], c.proc.pid, c.proc)
    assert set(ns.mounts_below(root)) == {root + "/data", root + "/scratch"}
    out = c.close()
    assert "successfully" in out
    assert ns.mounts_below(root) == {}
    log = "\n".join(pam_harness.read_log())
    assert "offline" in log
    assert PW not in log


def test_a_crashed_session_does_not_keep_the_mounts_forever(setup, pam_harness, ns):
    s = setup
    root, user = s["root"], s["user"]
    a = Session(pam_harness, ns, "login", user)
    wait_for_session(s["state"], a.proc.pid, a.proc)
    a.proc.kill()  # dies between open and close: never closes its session
    a.proc.wait()
    assert set(ns.mounts_below(root)) == {root + "/data", root + "/scratch"}
    b = Session(pam_harness, ns, "login", user)
    wait_for_session(s["state"], b.proc.pid, b.proc)
    with open(s["state"]) as f:
        assert [x["pid"] for x in json.load(f)["sessions"]] == [b.proc.pid]
    b.close()
    assert ns.mounts_below(root) == {}


def test_many_sessions_at_once_mount_once_and_the_last_close_unmounts(setup, pam_harness, ns,
                                                                      realm):
    s = setup
    root, user = s["root"], s["user"]
    # Logins in flight hold failure slots until they succeed: no limit for this crowd.
    realm.admin("accessgroup", "max_fail", "LOGIN", "0")
    sessions = [Session(pam_harness, ns, "login", user) for _ in range(12)]
    for x in sessions:
        wait_for_session(s["state"], x.proc.pid, x.proc)
    assert set(ns.mounts_below(root)) == {root + "/data", root + "/scratch"}  # each once
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(len(sessions)) as pool:
        list(pool.map(Session.close, sessions[:-1]))
    assert set(ns.mounts_below(root)) == {root + "/data", root + "/scratch"}
    sessions[-1].close()
    assert ns.mounts_below(root) == {}
    with open(s["state"]) as f:
        state = json.load(f)
    assert state["sessions"] == [] and state["mounts"] == []
    assert os.stat(s["state"]).st_mode & 0o077 == 0 and os.stat(s["state"]).st_uid == 0
