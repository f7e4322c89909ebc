"""Run PAM service files through real libpam: pam_wrapper + pam_python + pamtester.

Nothing under /etc/pam.d is touched: pam_wrapper (LD_PRELOAD) makes libpam read
service files from a temp dir.  The entry script is generated for the Python
environment running the tests, with its own plugin cache dir and a log file
the test can read.
"""

import os
import random
import shutil
import subprocess
import sys
import time

from ..install import PAM_PYTHON, render_script, site_dirs

PAM_WRAPPER = "libpam_wrapper.so"
PAM_WRAPPER_MODULES = "/usr/lib/x86_64-linux-gnu/pam_wrapper"

# pam_strerror() texts that pamtester prints, back to PAM code names.
_STRERROR = {
    "successfully": "SUCCESS",
    "Authentication failure": "AUTH_ERR",
    "Error in service module": "SERVICE_ERR",
    "System error": "SYSTEM_ERR",
    "Authentication service cannot retrieve authentication info": "AUTHINFO_UNAVAIL",
    "User not known to the underlying authentication module": "USER_UNKNOWN",
    "Conversation error": "CONV_ERR",
    "Permission denied": "PERM_DENIED",
    "Failure setting user credentials": "CRED_ERR",
    "Cannot make/remove an entry for the specified session": "SESSION_ERR",
    "Have exhausted maximum number of retries for service": "MAXTRIES",
    "Insufficient credentials to access authentication data": "CRED_INSUFFICIENT",
}


def missing_requirements():
    missing = []
    if not os.path.exists(PAM_PYTHON):
        missing.append("libpam-python (%s)" % PAM_PYTHON)
    if not shutil.which("pamtester"):
        missing.append("pamtester")
    if not any(os.path.exists(os.path.join(d, PAM_WRAPPER))
               for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib", "/lib/x86_64-linux-gnu")):
        missing.append("libpam-wrapper")
    if sys.base_prefix != "/usr":
        # pam_python embeds Debian's /usr/bin/python3: a venv made from another
        # Python has site-packages that interpreter cannot import.
        missing.append("a Python environment made from /usr/bin/python3 (this is %s)"
                       % sys.base_prefix)
    return missing


def as_user_prefix(user, private_tmp=False):
    """The command prefix that runs a program as ``user`` with that user's groups (or []).

    ``private_tmp``: in a mount namespace of its own with an empty ``/tmp``.  pam_wrapper
    keeps its copy of the service files in ``/tmp/pam.X``, a few dozen names for the
    whole machine, which a user cannot reclaim from root's (or another user's) runs; a
    private ``/tmp`` gives every run all of them.  The harness must then not live in /tmp.
    """
    prefix = []
    if private_tmp:
        prefix = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                  'mount -t tmpfs -o mode=1777 otpme-test-tmp /tmp && exec "$@"', "sh"]
    if not user:
        return prefix
    import pwd
    entry = pwd.getpwnam(user)
    return prefix + ["setpriv", "--reuid", str(entry.pw_uid), "--regid", str(entry.pw_gid),
                     "--init-groups", "--"]


class PamResult:
    """The outcome of one pamtester run."""

    def __init__(self, proc, log_path):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.output = proc.stdout + proc.stderr
        self.code = self._code()
        try:
            with open(log_path, encoding="utf-8") as fh:
                self.log = fh.read().splitlines()
        except FileNotFoundError:
            self.log = []

    def _code(self):
        if self.returncode == 0:
            return "SUCCESS"
        for text, code in _STRERROR.items():
            if text in self.output:
                return code
        # The exit status too: a run killed by a signal prints nothing (rc -9, -11, ...).
        return "UNKNOWN(rc=%s: %s)" % (self.returncode, self.output.strip()[-200:])

    @property
    def ok(self):
        return self.returncode == 0

    def explain(self):
        """The code, what pamtester printed and the module's log, for a failing test."""
        lines = ["PAM_%s" % self.code if not self.code.startswith("UNKNOWN") else self.code,
                 "output: %r" % self.output.strip()[-500:]]
        lines += ["log: " + line for line in self.log[-20:]] or ["log: (empty)"]
        return "\n  ".join(lines)

    def assert_code(self, expected):
        """Assert the PAM code; the message explains a failure.  Returns ``self``."""
        if self.code != expected:
            raise AssertionError("expected PAM_%s, got %s" % (expected, self.explain()))
        return self

    def __repr__(self):
        return "<PamResult %s>" % self.explain()


class ModuleDir:
    """What the kit's harnesses share: our entry script (generated for this environment,
    with its plugin cache at ``cache_dir``), PAM lines running it with ``log_file`` at
    ``log_path``, service files in ``service_dir``, and the log."""

    def _write_entry_script(self):
        self.script = os.path.join(self.dir, "pam_otpme_auth.py")
        with open(self.script, "w", encoding="utf-8") as fh:
            fh.write(render_script(site_dirs(), self.cache_dir))

    def line(self, options="", control="required", type="auth", log=True):
        """A PAM line running our module with ``options`` (and ``log_file`` unless ``log=False``)."""
        extra = " log_file=%s" % self.log_path if log else ""
        return "%s %s %s %s %s%s" % (type, control, PAM_PYTHON, self.script, options, extra)

    def service(self, name, *lines):
        """Write the service file ``name`` (``/etc/pam.d/NAME`` as the application sees it)."""
        path = os.path.join(self.service_dir, name)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
        return path

    def read_log(self):
        try:
            with open(self.log_path, encoding="utf-8") as fh:
                return fh.read().splitlines()
        except FileNotFoundError:
            return []


class PamHarness(ModuleDir):
    """Service files in a temp dir, run through real libpam.

    ``harness.line("passfile debug")`` gives an ``auth required`` line for our
    module (with ``log_file`` pointing at ``harness.log_path``);
    ``harness.service("svc", line, ...)`` writes a service file;
    ``harness.run("svc", "user", answers=["pw"])`` runs pamtester.
    """

    def __init__(self, directory):
        self.dir = str(directory)
        self.service_dir = os.path.join(self.dir, "pam.d")
        self.cache_dir = os.path.join(self.dir, "cache")
        self.log_path = os.path.join(self.dir, "otpme-auth.log")
        os.makedirs(self.service_dir, mode=0o755, exist_ok=True)
        os.makedirs(self.cache_dir, mode=0o700, exist_ok=True)
        self._write_entry_script()
        # libpam warns without an "other" service; make it deny everything.
        self.service("other", "auth required pam_deny.so", "account required pam_deny.so",
                     "session required pam_deny.so")

    def wrapper_module(self, name):
        """Path of a pam_wrapper test module (``pam_matrix.so``, ``pam_set_items.so``)."""
        return os.path.join(PAM_WRAPPER_MODULES, name)

    def run(self, service, user, *functions, answers=(), env=None, timeout=60, items=None,
            as_user=None, private_tmp=False, interleaved=False):
        """Run ``pamtester service user functions...`` (default: authenticate).

        ``items``: PAM items to set first, e.g. ``{"rhost": "10.0.0.1", "tty": "pts/1"}``.
        ``as_user``: run pamtester as this user, as a screen locker runs PAM
        (``setpriv --reuid U --regid G --init-groups``); the harness's directory, its
        script and log must then be reachable by that user (:meth:`share_with`).
        ``private_tmp``: see :func:`as_user_prefix`.
        ``interleaved``: pamtester's stderr (prompts, errors) and stdout (info) in one
        stream, in the order a terminal shows them (``result.stdout``; stderr empty).
        """
        environ = dict(os.environ)
        environ.update({
            "LD_PRELOAD": PAM_WRAPPER,
            "PAM_WRAPPER": "1",
            "PAM_WRAPPER_SERVICE_DIR": self.service_dir,
        })
        environ.update(env or {})
        item_args = []
        for name, value in (items or {}).items():
            item_args += ["-I", "%s=%s" % (name, value)]
        argv = (as_user_prefix(as_user, private_tmp) + ["pamtester"] + item_args
                + [service, user] + list(functions or ("authenticate",)))
        for attempt in range(40):
            proc = subprocess.run(argv, input="".join(a + "\n" for a in answers),
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT if interleaved else subprocess.PIPE,
                                  text=True, env=environ, timeout=timeout)
            proc.stderr = proc.stderr or ""
            # pam_wrapper has 36 names for its per-process directory (/tmp/pam.0-Z), shared by
            # the whole machine: when all are taken, its start-up fails before pam_start, so
            # nothing of the login ran and the run is simply repeated.
            if not (proc.returncode and "pwrap_init" in proc.stderr + proc.stdout
                    and "Failed to find a possible path" in proc.stderr + proc.stdout):
                break
            time.sleep(0.05 + random.random() * 0.2)
        return PamResult(proc, self.log_path)

    def share_with(self, user):
        """Let ``user`` run this harness's services (:meth:`run` ``as_user``): the
        directories traversable, the plugin cache readable, the log file the user's."""
        import pwd
        entry = pwd.getpwnam(user)
        path = os.path.abspath(self.dir)
        while path != "/":
            st = os.stat(path)
            if st.st_uid == 0 and not st.st_mode & 0o001:
                os.chmod(path, st.st_mode | 0o005)
            path = os.path.dirname(path)
        os.chmod(self.cache_dir, 0o755)
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchown(fd, entry.pw_uid, entry.pw_gid)
        os.close(fd)
