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
prints the import time of the login path (``python -X importtime``).
"""

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAM_PYTHON = "/lib/security/pam_python.so"
PEER = "/lib/x86_64-linux-gnu/security/pam_google_authenticator.so"
USER = "root"  # both modules run with user=0: no passwd lookup, the file is root's
SECRET = "2SH3V3GDW7ZNMGYE"

FLOOR_MODULE = """\
def pam_sm_authenticate(pamh, flags, argv):
    return pamh.PAM_SUCCESS


def pam_sm_setcred(pamh, flags, argv):
    return pamh.PAM_SUCCESS
"""


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def build_venv(work):
    venv = os.path.join(work, "venv")
    sh("/usr/bin/python3", "-m", "venv", venv)
    pip = os.path.join(venv, "bin", "pip")
    sh(pip, "install", "-q", "--disable-pip-version-check", ROOT)
    sh(pip, "install", "-q", "--disable-pip-version-check", "--no-deps",
       os.path.join(ROOT, "plugins", "google_authenticator"))
    return venv


def totp_code(vpy):
    """A function giving the current code, computed the way the plugin computes it."""
    sys.path.insert(0, os.path.join(ROOT, "plugins", "google_authenticator"))
    sys.path.insert(0, ROOT)
    from otpme_auth_google_authenticator.gaverify import compute_code
    from otpme_auth_google_authenticator.secretfile import SecretFile
    key = SecretFile.parse(SECRET).secret
    return lambda: compute_code(key, int(time.time()) // 30) + "\n"


def sample(service, service_dir, answers):
    env = dict(os.environ, LD_PRELOAD="libpam_wrapper.so", PAM_WRAPPER="1",
               PAM_WRAPPER_SERVICE_DIR=service_dir)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(["pamtester", service, USER, "authenticate"], input=answers,
                          capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit("%s failed: %s" % (service, proc.stdout + proc.stderr))
    return wall * 1000, cpu * 1000


def import_profile(venv, work, plugins, runs=7):
    """Median milliseconds of import for the login path, by top-level module."""
    samples = [_import_profile_once(venv, work, plugins) for _ in range(runs)]
    names = set().union(*samples)
    return {n: statistics.median(s.get(n, 0.0) for s in samples) for n in names}


def _import_profile_once(venv, work, plugins):
    code = ("import sys; exec(open(%r).read().split('from otpme_auth')[0]);"
            "import otpme_auth.pam_entry; %s" % (
                os.path.join(work, "pam_otpme_auth.py"),
                "; ".join("import %s" % p for p in plugins)))
    proc = subprocess.run(["/usr/bin/python3", "-X", "importtime", "-c", code],
                          capture_output=True, text=True)
    rows = {}
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|")
        if not cumulative.strip().isdigit():
            continue  # the header row
        if len(name) - len(name.lstrip()) == 1:  # top-level imports only
            rows[name.strip()] = int(cumulative) / 1000
    return rows



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
        venv = build_venv(work)
        sh(os.path.join(venv, "bin", "otpme-auth"), "install-pam", "--dest", work,
           "--cache-dir", os.path.join(work, "cache"))
        secret = os.path.join(work, "google_authenticator")
        with open(os.open(secret, os.O_WRONLY | os.O_CREAT, 0o600), "w") as fh:
            fh.write(SECRET + '\n" RATE_LIMIT 100 1\n" WINDOW_SIZE 3\n" TOTP_AUTH\n'
                     '12345678\n23456789\n')
        floor = os.path.join(work, "floor.py")
        with open(floor, "w") as fh:
            fh.write(FLOOR_MODULE)
        services = os.path.join(work, "pam.d")
        os.makedirs(services)
        files = {
            "other": "auth required pam_deny.so",
            "floor": "auth required %s %s" % (PAM_PYTHON, floor),
            "ours": "auth required %s %s google_authenticator secret=%s user=0" % (
                PAM_PYTHON, os.path.join(work, "pam_otpme_auth.py"), secret),
            "peer": "auth required %s secret=%s user=0" % (PEER, secret),
        }
        for name, text in files.items():
            with open(os.path.join(services, name), "w") as fh:
                fh.write(text + "\n")
        code = totp_code(os.path.join(venv, "bin", "python"))
        answers = {"floor": lambda: "", "ours": code, "peer": code}
        for name in answers:
            sample(name, services, answers[name]())  # warm the page cache, write the plugin cache
        results = {name: ([], []) for name in answers}
        for _ in range(args.rounds):
            for name in answers:
                wall, cpu = sample(name, services, answers[name]())
                results[name][0].append(wall)
                results[name][1].append(cpu)
        med = {n: (statistics.median(w), statistics.median(c)) for n, (w, c) in results.items()}
        print("cold pamtester TOTP logins, %d interleaved rounds, medians (ms)\n" % args.rounds)
        print("| case | wall ms | cpu ms | wall / floor | cpu / floor |")
        print("|---|---|---|---|---|")
        for name, label in (("floor", "pam_python floor (trivial module)"),
                            ("ours", "otpme-auth google_authenticator (TOTP)"),
                            ("peer", "pam_google_authenticator.so (C, same file)")):
            w, c = med[name]
            print("| %s | %.1f | %.1f | %.2f | %.2f |" % (
                label, w, c, w / med["floor"][0], c / med["floor"][1]))
        print("\nours / peer: wall %.2f, cpu %.2f" % (med["ours"][0] / med["peer"][0],
                                                      med["ours"][1] / med["peer"][1]))
        rows = import_profile(venv, work, ["otpme_auth_google_authenticator"])
        print("\nimport time of the login path (python -X importtime, cumulative ms):\n")
        print("| module | ms |")
        print("|---|---|")
        for name, ms in sorted(rows.items(), key=lambda kv: -kv[1]):
            if ms >= 0.1:
                print("| %s | %.2f |" % (name, ms))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
