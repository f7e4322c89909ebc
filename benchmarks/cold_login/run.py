"""Cold PAM logins: otpme-auth next to the pam_python floor, in one run.

    /usr/bin/python3 benchmarks/cold_login/run.py [--rounds 40]

Each sample is a fresh ``pamtester`` process under pam_wrapper (a cold start of
libpam, pam_python and the interpreter), as a login through sshd or login is:

* floor:  pam_python.so with a trivial module that returns PAM_SUCCESS;
* ours:   otpme-auth's entry script with the password source, the greeting
          plugin and the example third-party verifier (passfile; its Argon2id is
          set to its cheapest, one pass over 8 KiB, so that what is measured is
          the framework);
* unix:   pam_unix.so on a user with a password, a C reference.

Samples are interleaved (floor, ours, unix, floor, ...) so that load from
other processes hits all alike; we report medians of wall time and of the
CPU time the child used, and the ratios.  otpme-auth is installed into a
fresh venv the way an administrator installs it (not editable), so the
numbers include exactly what a login imports.  The script also prints the
import time of the login path (``python -X importtime``).  The mechanics are
shared with the other PAM benchmarks in ``benchmarks/pambench.py``.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from pambench import (  # noqa: E402
    PAM_PYTHON, ROOT, build_venv, entry_script, interleave, print_import_profile, print_table,
    sh, write_floor, write_services,
)

USER = "otpme-bench"
PASSWORD = "bench password"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the benchmark creates a throw-away user for pam_unix")
    work = tempfile.mkdtemp(prefix="otpme-bench-")
    created = False
    try:
        try:
            sh("id", USER)
        except subprocess.CalledProcessError:
            sh("useradd", "-M", "-d", "/nonexistent", USER)
            created = True
        sh("chpasswd", input="%s:%s\n" % (USER, PASSWORD))
        has_greeting = os.path.exists(os.path.join(ROOT, "plugins", "greeting", "pyproject.toml"))
        venv = build_venv(work, ["examples/otpme-auth-passfile"]
                          + (["plugins/greeting"] if has_greeting else []))
        passwd = os.path.join(work, "passwd")
        line = sh(os.path.join(venv, "bin", "python"), "-c",
                  "from otpme_auth_passfile import CHEAPEST, hash_line; "
                  "print(hash_line(%r, %r, **CHEAPEST))" % (USER, PASSWORD)).stdout
        with open(os.open(passwd, os.O_WRONLY | os.O_CREAT, 0o600), "w") as fh:
            fh.write(line)
        ours_opts = "passfile passfile_path=%s" % passwd
        if has_greeting:
            ours_opts += " online_greeting message_timeout=0"
        services = write_services(work, {
            "floor": write_floor(work),
            "ours": "auth required %s %s %s" % (PAM_PYTHON, entry_script(work), ours_opts),
            "unix": "auth required pam_unix.so",
        })
        typed = lambda: PASSWORD + "\n"  # noqa: E731
        medians = interleave({"floor": lambda: "", "ours": typed, "unix": typed},
                             services, USER, args.rounds)
        print_table("cold pamtester logins, %d interleaved rounds" % args.rounds, medians, [
            ("floor", "pam_python floor (trivial module)"),
            ("ours", "otpme-auth: password + %spassfile verifier"
             % ("greeting + " if has_greeting else "")),
            ("unix", "pam_unix.so (C, reference)")])
        print_import_profile(work, ["otpme_auth_passfile"]
                             + (["otpme_auth_greeting"] if has_greeting else []))
    finally:
        if created:
            subprocess.run(["userdel", USER], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
