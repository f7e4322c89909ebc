"""Cold PAM logins: otpme-auth next to the pam_python floor, in one run.

    /usr/bin/python3 benchmarks/cold_login/run.py [--rounds 40]

Each sample is a fresh ``pamtester`` process under pam_wrapper (a cold start of
libpam, pam_python and the interpreter), as a login through sshd or login is:

* floor:  pam_python.so with a trivial module that returns PAM_SUCCESS;
* ours:   otpme-auth's entry script with the password source, the greeting
          plugin and the example third-party verifier (passfile; its PBKDF2 is
          set to 1,000 iterations so that what is measured is the framework);
* unix:   pam_unix.so on a user with a password, a C reference.

Samples are interleaved (floor, ours, unix, floor, ...) so that load from
other processes hits all alike; we report medians of wall time and of the
CPU time the child used, and the ratios.  otpme-auth is installed into a
fresh venv the way an administrator installs it (not editable), so the
numbers include exactly what a login imports.  The script also prints the
import time of the login path (``python -X importtime``).
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
USER = "otpme-bench"
PASSWORD = "bench password"

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
    pkgs = [ROOT, os.path.join(ROOT, "examples", "otpme-auth-passfile")]
    if os.path.exists(os.path.join(ROOT, "plugins", "greeting", "pyproject.toml")):
        pkgs.append(os.path.join(ROOT, "plugins", "greeting"))
    sh(os.path.join(venv, "bin", "pip"), "install", "-q", "--disable-pip-version-check", *pkgs)
    return venv


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
        venv = build_venv(work)
        vpy = os.path.join(venv, "bin", "python")
        sh(os.path.join(venv, "bin", "otpme-auth"), "install-pam", "--dest", work,
           "--cache-dir", os.path.join(work, "cache"))
        passwd = os.path.join(work, "passwd")
        line = sh(vpy, "-c", "from otpme_auth_passfile import hash_line; "
                  "print(hash_line(%r, %r, iterations=1000))" % (USER, PASSWORD)).stdout
        with open(os.open(passwd, os.O_WRONLY | os.O_CREAT, 0o600), "w") as fh:
            fh.write(line)
        floor = os.path.join(work, "floor.py")
        with open(floor, "w") as fh:
            fh.write(FLOOR_MODULE)
        has_greeting = os.path.exists(os.path.join(ROOT, "plugins", "greeting", "pyproject.toml"))
        ours_opts = "passfile passfile_path=%s" % passwd
        if has_greeting:
            ours_opts += " online_greeting message_timeout=0"
        services = os.path.join(work, "pam.d")
        os.makedirs(services)
        files = {
            "other": "auth required pam_deny.so",
            "floor": "auth required %s %s" % (PAM_PYTHON, floor),
            "ours": "auth required %s %s %s" % (PAM_PYTHON, os.path.join(work, "pam_otpme_auth.py"),
                                                ours_opts),
            "unix": "auth required pam_unix.so",
        }
        for name, text in files.items():
            with open(os.path.join(services, name), "w") as fh:
                fh.write(text + "\n")
        answers = {"floor": "", "ours": PASSWORD + "\n", "unix": PASSWORD + "\n"}
        for name in files:
            if name != "other":
                sample(name, services, answers[name])  # warm the page cache, write the plugin cache
        results = {name: ([], []) for name in answers}
        for _ in range(args.rounds):
            for name in answers:
                wall, cpu = sample(name, services, answers[name])
                results[name][0].append(wall)
                results[name][1].append(cpu)
        med = {n: (statistics.median(w), statistics.median(c)) for n, (w, c) in results.items()}
        print("cold pamtester logins, %d interleaved rounds, medians (ms)\n" % args.rounds)
        print("| case | wall ms | cpu ms | wall / floor | cpu / floor |")
        print("|---|---|---|---|---|")
        for name, label in (("floor", "pam_python floor (trivial module)"),
                            ("ours", "otpme-auth: password + %spassfile verifier"
                             % ("greeting + " if has_greeting else "")),
                            ("unix", "pam_unix.so (C, reference)")):
            w, c = med[name]
            print("| %s | %.1f | %.1f | %.2f | %.2f |" % (
                label, w, c, w / med["floor"][0], c / med["floor"][1]))
        plugins = ["otpme_auth_passfile"] + (["otpme_auth_greeting"] if has_greeting else [])
        rows = import_profile(venv, work, plugins)
        print("\nimport time of the login path (python -X importtime, cumulative ms):\n")
        print("| module | ms |")
        print("|---|---|")
        for name, ms in sorted(rows.items(), key=lambda kv: -kv[1]):
            if ms >= 0.1:
                print("| %s | %.2f |" % (name, ms))
    finally:
        if created:
            subprocess.run(["userdel", USER], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
