"""What the PAM benchmarks share: a production-like install, cold pamtester samples, tables.

* :func:`build_venv` installs otpme-auth and the given plugins into a fresh
  venv of Debian's /usr/bin/python3, not editable, as an administrator would
  (editable installs add a finder that imports pathlib at every start);
* :func:`sample` runs one fresh ``pamtester`` under pam_wrapper and returns wall
  and child-CPU milliseconds;
* :func:`interleave` runs every case once per round, so load from other
  processes falls on all cases alike, and returns medians;
* :func:`print_table` prints the ratios against the floor (a trivial
  pam_python module, :func:`write_floor`); :func:`print_import_profile` the
  import time of the login path.
"""

import os
import resource
import statistics
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAM_PYTHON = "/lib/security/pam_python.so"

FLOOR_MODULE = """\
def pam_sm_authenticate(pamh, flags, argv):
    return pamh.PAM_SUCCESS


def pam_sm_setcred(pamh, flags, argv):
    return pamh.PAM_SUCCESS
"""


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def build_venv(work, packages=(), no_deps=()):
    """A venv with otpme-auth, ``packages`` and ``no_deps`` (paths under the repository)."""
    venv = os.path.join(work, "venv")
    sh("/usr/bin/python3", "-m", "venv", venv)
    pip = [os.path.join(venv, "bin", "pip"), "install", "-q", "--disable-pip-version-check"]
    sh(*pip, ROOT, *[os.path.join(ROOT, p) for p in packages])
    if no_deps:
        sh(*pip, "--no-deps", *[os.path.join(ROOT, p) for p in no_deps])
    sh(os.path.join(venv, "bin", "otpme-auth"), "install-pam", "--dest", work, "--no-snippets",
       "--cache-dir", os.path.join(work, "cache"))
    return venv


def entry_script(work):
    return os.path.join(work, "pam_otpme_auth.py")


def write_floor(work):
    path = os.path.join(work, "floor.py")
    with open(path, "w") as fh:
        fh.write(FLOOR_MODULE)
    return "auth required %s %s" % (PAM_PYTHON, path)


def write_services(work, files):
    """Service files ``{name: line}`` in WORK/pam.d (plus a deny-all ``other``)."""
    services = os.path.join(work, "pam.d")
    os.makedirs(services, exist_ok=True)
    for name, text in dict(files, other="auth required pam_deny.so").items():
        with open(os.path.join(services, name), "w") as fh:
            fh.write(text + "\n")
    return services


def sample(service, service_dir, user, answers):
    env = dict(os.environ, LD_PRELOAD="libpam_wrapper.so", PAM_WRAPPER="1",
               PAM_WRAPPER_SERVICE_DIR=service_dir)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(["pamtester", service, user, "authenticate"], input=answers,
                          capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit("%s failed: %s" % (service, proc.stdout + proc.stderr))
    return wall * 1000, cpu * 1000


def interleave(cases, service_dir, user, rounds):
    """``cases``: {service: answers() -> stdin text}.  Returns {service: (wall, cpu) medians}."""
    for name, answers in cases.items():
        sample(name, service_dir, user, answers())  # warm the page cache and the plugin cache
    results = {name: ([], []) for name in cases}
    for _ in range(rounds):
        for name, answers in cases.items():
            wall, cpu = sample(name, service_dir, user, answers())
            results[name][0].append(wall)
            results[name][1].append(cpu)
    return {n: (statistics.median(w), statistics.median(c)) for n, (w, c) in results.items()}


def print_table(title, medians, labels, floor="floor"):
    print("%s, medians (ms)\n" % title)
    print("| case | wall ms | cpu ms | wall / floor | cpu / floor |")
    print("|---|---|---|---|---|")
    for name, label in labels:
        w, c = medians[name]
        print("| %s | %.1f | %.1f | %.2f | %.2f |" % (
            label, w, c, w / medians[floor][0], c / medians[floor][1]))


def import_profile(work, plugins, runs=7):
    """Median milliseconds of import for the login path, by top-level module."""
    samples = [_import_profile_once(work, plugins) for _ in range(runs)]
    names = set().union(*samples)
    return {n: statistics.median(s.get(n, 0.0) for s in samples) for n in names}


def _import_profile_once(work, plugins):
    code = ("import sys; exec(open(%r).read().split('from otpme_auth')[0]);"
            "import otpme_auth.pam_entry; %s" % (
                entry_script(work), "; ".join("import %s" % p for p in plugins)))
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


def print_import_profile(work, plugins):
    rows = import_profile(work, plugins)
    print("\nimport time of the login path (python -X importtime, cumulative ms):\n")
    print("| module | ms |")
    print("|---|---|")
    for name, ms in sorted(rows.items(), key=lambda kv: -kv[1]):
        if ms >= 0.1:
            print("| %s | %.2f |" % (name, ms))
