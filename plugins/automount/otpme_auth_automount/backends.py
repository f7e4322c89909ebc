"""One small backend per filesystem type, each calling the system's mount helper.

No secret is ever put on a command line: the shares carry none (the server refuses
options holding one); a backend needing one would pass it in a 0600 file of a private
directory or on stdin.  Every helper runs in its own process group and is killed after
``automount_timeout`` seconds (a hung NFS server then costs the login that long, no more).
"""

import os
import shutil
import signal
import subprocess

SBIN = ("/usr/sbin", "/sbin", "/usr/bin", "/bin")


class MountError(Exception):
    """One line for the log."""


def _helper(name):
    found = shutil.which(name) or shutil.which(name, path=os.pathsep.join(SBIN))
    if not found:
        raise MountError("the mount helper %s is not installed" % name)
    return found


def run_helper(argv, timeout, stdin=None, env=None):
    """Run ``argv`` (its program looked up in the sbin dirs); MountError on failure or timeout."""
    argv = [_helper(argv[0])] + list(argv[1:])
    environ = dict(env or {}, PATH=":".join(SBIN), LC_ALL="C")
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, close_fds=True, env=environ, cwd="/")
    try:
        out, _ = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            proc.wait(1)  # a process stuck in the kernel may never go: do not wait for it
        except subprocess.TimeoutExpired:
            pass
        raise MountError("%s did not finish within %gs (automount_timeout): killed"
                         % (os.path.basename(argv[0]), timeout)) from None
    if proc.returncode != 0:
        said = out.decode("utf-8", "replace").strip().splitlines()
        said = said[-1][:200] if said else "exit code %d" % proc.returncode
        raise MountError("%s failed: %s" % (os.path.basename(argv[0]), said))


def _mount(fstype, source, target, opts, timeout):
    run_helper(["mount", "-t", fstype, "-o", ",".join(opts), "--", source, target], timeout)


def bind(share, source, target, opts, entry, timeout):
    if not source.startswith("/"):
        raise MountError("a bind share needs an absolute source")
    run_helper(["mount", "--bind", "--", source, target], timeout)
    # The bind mount takes its flags only on a remount.
    try:
        run_helper(["mount", "-o", ",".join(["remount", "bind"] + opts), "--", target], timeout)
    except MountError:
        run_helper(["umount", "-l", target], timeout)
        raise


def tmpfs(share, source, target, opts, entry, timeout):
    opts = opts + ["uid=%d" % entry.pw_uid, "gid=%d" % entry.pw_gid, "mode=0700"]
    _mount("tmpfs", "tmpfs", target, opts, timeout)


def nfs(share, source, target, opts, entry, timeout):
    _helper("mount.nfs")
    _mount("nfs", source, target, opts, timeout)


def cifs(share, source, target, opts, entry, timeout):
    """Kerberos (``sec=krb5``, the user's ticket) or guest: no password is ever handled."""
    _helper("mount.cifs")
    extra = ["uid=%d" % entry.pw_uid, "forceuid", "cruid=%d" % entry.pw_uid]
    if share.get("force_group"):
        extra.append("gid=%s" % share["force_group"])
    if share.get("force_create_mode"):
        extra.append("file_mode=%s" % share["force_create_mode"])
    if share.get("force_directory_mode"):
        extra.append("dir_mode=%s" % share["force_directory_mode"])
    _mount("cifs", source, target, opts + extra, timeout)


def sshfs(share, source, target, opts, entry, timeout):
    """sshfs mounts (root opens /dev/fuse) but its ssh runs as the user (``setpriv`` in
    ``ssh_command``): the user's own keys, agent-less, known_hosts; public key
    authentication only (``BatchMode``: never a password prompt, an unknown host key
    fails).  Files show as the user's (``uid``/``gid``), access is checked by the kernel
    (``default_permissions``)."""
    setpriv = _helper("setpriv")
    ssh = _helper("ssh")
    extra = ["BatchMode=yes", "allow_other", "default_permissions",
             "uid=%d" % entry.pw_uid, "gid=%d" % entry.pw_gid,
             "ssh_command=%s --reuid=%d --regid=%d --init-groups %s"
             % (setpriv, entry.pw_uid, entry.pw_gid, ssh)]
    if share.get("force_group"):
        extra[4] = "gid=%s" % share["force_group"]
    run_helper(["sshfs", "-o", ",".join(opts + extra), "--", source, target], timeout)


BACKENDS = {"bind": bind, "tmpfs": tmpfs, "nfs": nfs, "cifs": cifs, "sshfs": sshfs}
