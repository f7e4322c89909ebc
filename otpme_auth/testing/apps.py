"""Real PAM applications in a private mount namespace: sshd, sudo, su, pam-auth-update.

The host's ``/etc`` is never written: :class:`AppSandbox` starts a holder process
in a new mount namespace (``unshare --mount --propagation private``) where
``/etc``, ``/var/cache`` and ``/var/log`` are overlays on a tmpfs, ``/home`` and
``/run`` are fresh tmpfs, and ``/etc/pam.d``, ``/etc/sudoers.d``,
``/usr/share/pam-configs`` and ``/var/lib/pam`` are bind mounts of copies in the
sandbox's directory (so a test writes PAM service files from outside, with plain
file writes).  Every command of the test joins the namespace with ``nsenter``;
users added with :meth:`AppSandbox.add_user` exist only there.

Everything a real administrator would run is run for real: ``/usr/sbin/sshd``
on 127.0.0.1 and a free port (keyboard-interactive through PAM; the client is
paramiko, which answers every prompt and records it), ``sudo -S`` and ``su`` run
by an unprivileged user (``setpriv``), ``pam-auth-update``.

Fixture ``otpme_auth_apps`` of the opt-in kit (``pytest_plugins =
["otpme_auth.testing.plugin"]``; this repository calls it ``app_sandbox``): one
sandbox per test, stopped after.  Used by tests/apps/, and reusable for
benchmarks (``AppSandbox.ssh`` returns the wall time of the login).

Needs root, ``unshare``/``nsenter``/``setpriv`` (util-linux), and the Debian
packages ``openssh-server openssh-client sudo`` plus PyPI ``paramiko``;
:func:`missing_requirements` says what is missing.
"""

import os
import shutil
import subprocess
import time

from ..install import PAM_PYTHON
from .pam import ModuleDir
from .procs import free_port, stop_process, wait_for_port

SSHD = "/usr/sbin/sshd"

_SETUP = r"""#!/bin/sh
# Runs inside a new mount namespace: make the host's files copy-on-write, then hold it.
set -e
W=$1
mount -t tmpfs -o mode=0755 tmpfs "$W/ovl"
for d in etc var/cache var/log; do
    n=$(echo "$d" | tr / _)
    mkdir -p "$W/ovl/$n.up" "$W/ovl/$n.work"
    mount -t overlay overlay -o "lowerdir=/$d,upperdir=$W/ovl/$n.up,workdir=$W/ovl/$n.work" "/$d"
done
mount -t tmpfs -o mode=0755 tmpfs /home
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/sshd /run/sudo/ts
chmod 0711 /run/sudo; chmod 0700 /run/sudo/ts
mount --bind "$W/pam.d" /etc/pam.d
mount --bind "$W/sudoers.d" /etc/sudoers.d
mount --bind "$W/pam-configs" /usr/share/pam-configs
mount --bind "$W/var-lib-pam" /var/lib/pam
echo ready > "$W/ready"
exec sleep 2147483647
"""


def missing_requirements():
    """What this machine lacks to run the sandbox (empty when all is there)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root (mount namespaces, sshd, useradd)")
    for tool in ("unshare", "nsenter", "setpriv", "useradd", "sudo", "su", "pam-auth-update"):
        if not shutil.which(tool) and not os.path.exists("/usr/sbin/" + tool):
            missing.append(tool)
    if not os.path.exists(SSHD):
        missing.append("openssh-server (%s)" % SSHD)
    if not os.path.exists(PAM_PYTHON):
        missing.append("libpam-python (%s)" % PAM_PYTHON)
    try:
        import paramiko  # noqa: F401
    except ImportError:
        missing.append("paramiko (PyPI)")
    return missing


class SshResult:
    """One ssh login: ``ok`` (authenticated and the command ran), prompts, exit status."""

    def __init__(self, ok, prompts, instructions, status, output, error, seconds):
        self.ok = ok
        self.prompts = prompts            # the keyboard-interactive prompts, in order
        self.instructions = instructions  # texts sshd sent with them (PAM info/error messages)
        self.status = status              # the remote command's exit status (None if not run)
        self.output = output
        self.error = error                # why the login failed (paramiko's exception text)
        self.seconds = seconds            # wall time from connect to the command's exit

    def __repr__(self):
        return "<SshResult ok=%s status=%s prompts=%r error=%r>" % (
            self.ok, self.status, self.prompts, self.error)


class AppSandbox(ModuleDir):
    """A private mount namespace for real PAM applications; see the module doc.

    ``sandbox.script`` is our pam_python entry script (generated for this
    environment), ``sandbox.line("online ...", type="auth")`` a PAM line running
    it with ``log_file`` at ``sandbox.log_path``.
    """

    def __init__(self, directory):
        self.dir = str(directory)
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.pamd = self.service_dir = os.path.join(self.dir, "pam.d")
        self.pam_configs = os.path.join(self.dir, "pam-configs")
        self.log_path = os.path.join(self.dir, "otpme-auth.log")
        self.cache_dir = os.path.join(self.dir, "cache")
        self.pid = None
        self._holder = None
        self._daemons = []
        for name, source in (("pam.d", "/etc/pam.d"), ("sudoers.d", "/etc/sudoers.d"),
                             ("pam-configs", "/usr/share/pam-configs"),
                             ("var-lib-pam", "/var/lib/pam")):
            target = os.path.join(self.dir, name)
            if os.path.isdir(source):
                shutil.copytree(source, target, symlinks=True)
            else:
                os.makedirs(target)
        os.makedirs(os.path.join(self.dir, "ovl"))
        os.makedirs(self.cache_dir, mode=0o700)
        self._write_entry_script()
        setup = os.path.join(self.dir, "setup.sh")
        with open(setup, "w", encoding="utf-8") as fh:
            fh.write(_SETUP)
        self._holder = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", setup, self.dir],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.pid = self._holder.pid
        ready = os.path.join(self.dir, "ready")
        deadline = time.monotonic() + 20
        while not os.path.exists(ready):
            if self._holder.poll() is not None or time.monotonic() > deadline:
                err = self._holder.stderr.read().decode("utf-8", "replace") if \
                    self._holder.poll() is not None else "timeout"
                self.stop()
                raise RuntimeError("the mount namespace did not come up: %s" % err)
            time.sleep(0.02)

    # -- inside the namespace ---------------------------------------------------------

    def command(self, argv, user=None):
        """``argv`` run inside the namespace (as ``user`` if given: uid, gid and groups)."""
        prefix = ["nsenter", "-t", str(self.pid), "-m", "--"]
        if user is not None:
            prefix += ["setpriv", "--reuid", user, "--regid", user, "--init-groups",
                       "--reset-env"]
        return prefix + list(argv)

    def run(self, argv, user=None, input=None, env=None, timeout=120, check=False):
        """Run a command in the namespace; returns the CompletedProcess (text)."""
        environ = None
        if env is not None:
            environ = dict(os.environ)
            environ.update(env)
        proc = subprocess.run(self.command(argv, user), input=input, capture_output=True,
                              text=True, env=environ, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError("%s failed (%d): %s" % (" ".join(argv), proc.returncode,
                                                       proc.stdout + proc.stderr))
        return proc

    def add_user(self, name, password=None, home=True):
        """A local user that exists only in the namespace (``password`` for pam_unix)."""
        self._locked(["useradd", "-s", "/bin/sh"] + (["-m"] if home else []) + [name])
        if password is not None:
            self._locked(["chpasswd"], input="%s:%s\n" % (name, password))
        return name

    def _locked(self, argv, input=None):
        """Run a shadow-utils command, waiting while the host's /etc/passwd is locked.

        The overlay shows the host's /etc live: a useradd running on the host (other
        tests) holds /etc/passwd.lock for a moment; wait for it, as useradd says.
        """
        for _ in range(200):
            proc = self.run(argv, input=input)
            if proc.returncode == 0 or "lock" not in proc.stderr:
                break
            time.sleep(0.1)
        if proc.returncode != 0:
            raise RuntimeError("%s failed: %s" % (" ".join(argv[:1]), proc.stderr))

    def user_ids(self, name):
        out = self.run(["id", "-u", name], check=True).stdout.strip()
        gid = self.run(["id", "-g", name], check=True).stdout.strip()
        return int(out), int(gid)

    def write(self, path, text, mode=0o644, owner=None):
        """Write a file as the namespace sees it (e.g. a user's secret file in /home)."""
        self.run(["sh", "-c", 'umask 077; cat > "$1"; chmod %o "$1"' % mode, "sh", path],
                 input=text, check=True)
        if owner is not None:
            self.run(["chown", "%s:" % owner, path], check=True)

    def read(self, path):
        return self.run(["cat", path], check=True).stdout

    # -- PAM configuration: line(), service(), read_log() from ModuleDir ---------------

    # -- the applications ---------------------------------------------------------------

    def start_sshd(self, extra=()):
        """Start a real sshd in the namespace on 127.0.0.1 and a free port; returns the port.

        Keyboard-interactive through PAM service ``sshd`` (write it with
        :meth:`service`); public keys from the namespace's
        ``/etc/ssh/otpme_test_keys/USER`` (:meth:`authorize_key`).  Its log (``-e``)
        is ``sshd/sshd.log`` (:meth:`sshd_log`).
        """
        sshd_dir = os.path.join(self.dir, "sshd")
        os.makedirs(sshd_dir, exist_ok=True)
        os.chmod(sshd_dir, 0o755)
        hostkey = os.path.join(sshd_dir, "host_ed25519")
        if not os.path.exists(hostkey):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostkey],
                           check=True, capture_output=True)
        port = free_port()
        config = os.path.join(sshd_dir, "sshd_config")
        with open(config, "w", encoding="utf-8") as fh:
            fh.write("\n".join([
                "ListenAddress 127.0.0.1",
                "HostKey %s" % hostkey,
                "PidFile none",
                "UsePAM yes",
                "KbdInteractiveAuthentication yes",
                "PasswordAuthentication no",
                "PubkeyAuthentication yes",
                # read as the user: inside the namespace's /etc, not the (0700) temp dir
                "AuthorizedKeysFile /etc/ssh/otpme_test_keys/%u",
                "StrictModes no",
                "PermitRootLogin no",
                "MaxAuthTries 3",
                "LogLevel VERBOSE",
                "UseDNS no",
            ] + list(extra)) + "\n")
        log = open(os.path.join(sshd_dir, "sshd.log"), "ab")
        proc = subprocess.Popen(self.command([SSHD, "-D", "-e", "-f", config, "-p", str(port)]),
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self._daemons.append(proc)
        if not wait_for_port(proc, port):
            raise RuntimeError("sshd did not start: %s" % self.sshd_log())
        self.sshd_port = port
        return port

    def sshd_log(self):
        try:
            with open(os.path.join(self.dir, "sshd", "sshd.log"), encoding="utf-8",
                      errors="replace") as fh:
                return fh.read()
        except FileNotFoundError:
            return ""

    def authorize_key(self, user):
        """A new ed25519 key authorised for ``user``; returns the paramiko key."""
        import paramiko
        key = paramiko.Ed25519Key.from_private_key_file(self._new_key())
        self.run(["mkdir", "-p", "-m", "0755", "/etc/ssh/otpme_test_keys"], check=True)
        self.write("/etc/ssh/otpme_test_keys/%s" % user,
                   "%s %s\n" % (key.get_name(), key.get_base64()), mode=0o644)
        return key

    def _new_key(self):
        path = os.path.join(self.dir, "sshd", "client_%d" % len(os.listdir(
            os.path.join(self.dir, "sshd"))))
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path],
                       check=True, capture_output=True)
        return path

    def ssh(self, user, answers=(), command="true", port=None, key=None, timeout=60):
        """Log in over ssh as a real client would: keyboard-interactive (or ``key``).

        Each prompt gets the next of ``answers``; a prompt beyond them gets an
        empty answer.  Returns an :class:`SshResult`.
        """
        import paramiko
        answers = list(answers)
        prompts, instructions = [], []

        def handler(title, instruction, fields):
            if instruction:
                instructions.append(instruction)
            replies = []
            for text, _echo in fields:
                prompts.append(text)
                replies.append(answers.pop(0) if answers else "")
            return replies

        start = time.monotonic()
        transport = paramiko.Transport(("127.0.0.1", port or self.sshd_port))
        transport.banner_timeout = transport.auth_timeout = timeout
        try:
            transport.start_client(timeout=timeout)
            if key is not None:
                transport.auth_publickey(user, key)
            else:
                transport.auth_interactive(user, handler)
            channel = transport.open_session(timeout=timeout)
            channel.settimeout(timeout)
            channel.exec_command(command)
            output = b""
            while True:
                chunk = channel.recv(65536)
                if not chunk:
                    break
                output += chunk
            status = channel.recv_exit_status()
            return SshResult(status == 0, prompts, instructions, status,
                             output.decode("utf-8", "replace"), None, time.monotonic() - start)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            return SshResult(False, prompts, instructions, None, "",
                             "%s: %s" % (type(exc).__name__, exc), time.monotonic() - start)
        finally:
            transport.close()

    def sudo(self, user, answers=(), command=("true",), timeout=60):
        """``sudo -S -k COMMAND`` run by ``user`` (unprivileged); answers on stdin."""
        return self.run(["sudo", "-S", "-k", "--"] + list(command), user=user,
                        input="".join(a + "\n" for a in answers), timeout=timeout)

    def su(self, user, target, answers=(), command="true", timeout=60):
        """``su TARGET -c COMMAND`` run by ``user`` (unprivileged); answers on stdin."""
        return self.run(["su", target, "-c", command], user=user,
                        input="".join(a + "\n" for a in answers), timeout=timeout)

    def pam_auth_update(self, *args):
        """Run ``pam-auth-update --force ARGS`` in the namespace (writes its common-* files)."""
        return self.run(["pam-auth-update", "--force"] + list(args),
                        env={"DEBIAN_FRONTEND": "noninteractive"}, check=True)

    def profile(self, name, text):
        """Write a pam-auth-update profile ``/usr/share/pam-configs/NAME``."""
        with open(os.path.join(self.pam_configs, name), "w", encoding="utf-8") as fh:
            fh.write(text)

    # -- the end --------------------------------------------------------------------

    def stop(self):
        """Stop every daemon started here, then the namespace (its mounts go with it)."""
        for proc in self._daemons:
            stop_process(proc)
        self._daemons = []
        if self._holder is not None:
            stop_process(self._holder)
            if self._holder.stderr:
                self._holder.stderr.close()
            self._holder = None


__all__ = ["AppSandbox", "SshResult", "missing_requirements"]
