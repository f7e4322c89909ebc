"""Cold TOTP logins: otpme-auth's google_authenticator next to pam_google_authenticator.so.

    /usr/bin/python3 benchmarks/totp_login/run.py [--rounds 40]

Each sample is a fresh ``pamtester`` process under pam_wrapper (a cold start of
libpam, pam_python and the interpreter), as a login through sshd or login is.
All three cases run in one run, interleaved (floor, ours, peer, floor, ...):

* floor: pam_python.so with a trivial module that returns PAM_SUCCESS;
* ours:  otpme-auth's entry script with ``google_authenticator`` on a secret file;
* peer:  Debian's pam_google_authenticator.so (C) on the same secret file.

Both verify the current TOTP code of the same file (``secret=FILE user=0``).  The
file says ``RATE_LIMIT 100 1``: both record every attempt and so rewrite the file
on every login (ours: lock, temp file, fsync, rename), as a real login with a
rate limit does, without ever refusing; no ``DISALLOW_REUSE``, so one code can
be used by every sample of a time step.  We report
medians of wall time and of the CPU time the child used, and the ratios.
otpme-auth and the plugin are installed into a fresh venv, not editable, as an
administrator installs them (the plugin with --no-deps: ``qrcode`` is for
``otpme-auth enroll`` only and never imported by a login).  The script also
prints the import time of the login path (``python -X importtime``).  The
mechanics are shared with the other PAM benchmarks in ``benchmarks/pambench.py``.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from pambench import (  # noqa: E402
    PAM_PYTHON, ROOT, build_venv, entry_script, interleave, print_import_profile, print_table,
    write_floor, write_services,
)

PEER = "/lib/x86_64-linux-gnu/security/pam_google_authenticator.so"
USER = "root"  # both modules run with user=0: no passwd lookup, the file is root's
SECRET = "2SH3V3GDW7ZNMGYE"


def totp_code():
    """A function giving the current code, computed the way the plugin computes it."""
    sys.path.insert(0, os.path.join(ROOT, "plugins", "google_authenticator"))
    sys.path.insert(0, ROOT)
    from otpme_auth_google_authenticator.gaverify import compute_code
    from otpme_auth_google_authenticator.secretfile import SecretFile
    key = SecretFile.parse(SECRET).secret
    return lambda: compute_code(key, int(time.time()) // 30) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: pam_python and the peer run as root on a root-owned secret file")
    if not os.path.exists(PEER):
        sys.exit("needs libpam-google-authenticator (%s)" % PEER)
    work = tempfile.mkdtemp(prefix="otpme-totp-bench-")
    try:
        # --no-deps: qrcode is for `otpme-auth enroll` only, never imported by a login
        build_venv(work, no_deps=["plugins/google_authenticator"])
        secret = os.path.join(work, "google_authenticator")
        with open(os.open(secret, os.O_WRONLY | os.O_CREAT, 0o600), "w") as fh:
            fh.write(SECRET + '\n" RATE_LIMIT 100 1\n" WINDOW_SIZE 3\n" TOTP_AUTH\n'
                     '12345678\n23456789\n')
        services = write_services(work, {
            "floor": write_floor(work),
            "ours": "auth required %s %s google_authenticator secret=%s user=0" % (
                PAM_PYTHON, entry_script(work), secret),
            "peer": "auth required %s secret=%s user=0" % (PEER, secret),
        })
        code = totp_code()
        medians = interleave({"floor": lambda: "", "ours": code, "peer": code},
                             services, USER, args.rounds)
        print_table("cold pamtester TOTP logins, %d interleaved rounds" % args.rounds, medians, [
            ("floor", "pam_python floor (trivial module)"),
            ("ours", "otpme-auth google_authenticator (TOTP)"),
            ("peer", "pam_google_authenticator.so (C, same file)")])
        print("\nours / peer: wall %.2f, cpu %.2f" % (medians["ours"][0] / medians["peer"][0],
                                                     medians["ours"][1] / medians["peer"][1]))
        print_import_profile(work, ["otpme_auth_google_authenticator"])
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
