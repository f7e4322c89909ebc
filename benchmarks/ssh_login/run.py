"""ssh logins through a real sshd, interleaved against the pam_permit floor, in one run.

    sudo .venv/bin/python benchmarks/ssh_login/run.py [--rounds 15] [--key-func SPEC]

(the development venv: the realm runs its server from there, the sandbox comes
from ``otpme_auth.testing.apps``; the PAM path is a fresh, not editable install
in a temporary venv, as an administrator makes it: ``pambench.build_venv``)

The bars (issue 11): an online login with the shipped snippet at most 1.5x the
pam_permit floor; an offline login at most the KDF alone + 10 %.

A realm runs on loopback (the embedded server, SQLite).  ``/usr/sbin/sshd`` runs
on 127.0.0.1 in the real-apps tests' sandbox (:class:`otpme_auth.testing.apps.AppSandbox`:
a private mount namespace with copy-on-write ``/etc``; the benchmark's user is
added there only), so the host's files are never touched.  sshd reads its PAM
file at every connection, so one sshd serves every case: before each sample the
benchmark writes ``/etc/pam.d/sshd`` (in the sandbox) for the case.  Each sample
is the wall time of ``ssh -p PORT USER@127.0.0.1 true`` (the OpenSSH client,
keyboard-interactive, the answer given by SSH_ASKPASS), interleaved per round:

* floor:   ``auth required pam_permit.so`` (the floor of an ssh login);
* kdf:     a trivial pam_python module that runs one Argon2i derivation with the
           cache's parameters (the KDF alone, as an ssh login);
* online:  the shipped ``otpme-auth`` snippet (``cache_login_tokens``,
           ``online_greeting offline_greeting show_errors``), the realm up, the
           offline cache fresh (so: no key derivation, and nothing rewritten);
* offline: the same snippet with a host.conf whose server port is closed
           (connection refused: the cache is unlocked, one derivation);
* nocache: the snippet without ``cache_login_tokens``.

The greeting's ``message_timeout`` pause does not apply to terminal applications
such as sshd (docs/performance.md), so ``message_timeout=0`` cases would only repeat
these.  Account and session stacks are ``pam_permit.so`` in every case.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
from pambench import PAM_PYTHON, build_venv, entry_script  # noqa: E402

USER = "otpmebench"
PASSWORD = "correct horse battery staple"
KDF_MODULE = """\
import sys
sys.path.insert(0, %r)
from argon2.low_level import Type, hash_secret_raw


def pam_sm_authenticate(pamh, flags, argv):
    pamh.conversation(pamh.Message(pamh.PAM_PROMPT_ECHO_OFF, "Password: "))
    hash_secret_raw(b"correct horse battery staple", b"0123456789abcdef", time_cost=%d,
                    memory_cost=%d, parallelism=%d, hash_len=32, type=Type.I)
    return pamh.PAM_SUCCESS


def pam_sm_setcred(pamh, flags, argv):
    return pamh.PAM_SUCCESS
"""
LABELS = [("floor", "pam_permit.so (floor)"),
          ("kdf", "KDF alone (pam_python + one Argon2i derivation)"),
          ("online", "online, shipped snippet, fresh cache"),
          ("offline", "offline, shipped snippet (server port closed)"),
          ("nocache", "online without cache_login_tokens")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--key-func", default=None,
                        help="offline_key_func value (default: the option's default)")
    args = parser.parse_args()
    sys.path.insert(0, ROOT)
    from otpme_auth.install import render_snippets
    from otpme_auth.testing.apps import AppSandbox, missing_requirements
    from otpme_auth.testing.procs import free_port
    from otpme_auth_server.testing import Realm
    missing = missing_requirements()
    if missing:
        sys.exit("cannot run the sandbox here: %s" % ", ".join(missing))
    work = tempfile.mkdtemp(prefix="otpme-ssh-bench-")
    os.chmod(work, 0o755)
    realm = sandbox = None
    try:
        venv = build_venv(work, packages=["plugins/online", "plugins/offline",
                                          "plugins/greeting"])
        vpy = os.path.join(venv, "bin", "python")
        key_func = args.key_func or "Argon2_i;min_mem:65536,max_mem:262144,iterations:3,threads:4"
        t, m, p = (int(x) for x in subprocess.run(
            [vpy, "-c", "from otpme_auth_offline.keyfunc import parse_key_func, choose_params; "
             "p = choose_params(parse_key_func(%r)); print(p.iterations, p.memory_kib, p.threads)"
             % key_func], check=True, capture_output=True, text=True).stdout.split())
        site = subprocess.run([vpy, "-c", "import argon2, os; print(os.path.dirname("
                               "os.path.dirname(argon2.__file__)))"], check=True,
                              capture_output=True, text=True).stdout.strip()
        kdf_module = os.path.join(work, "kdf.py")
        with open(kdf_module, "w") as fh:
            fh.write(KDF_MODULE % (site, t, m, p))

        realm = Realm(os.path.join(work, "realm"))
        realm.add_user(USER, PASSWORD, offline=True)
        jotp = realm.add_host("bench", tokens=["%s/pass" % USER])
        realm.start()
        conf = realm.join("bench", jotp)
        dead = os.path.join(work, "dead.conf")
        with open(conf) as fh:
            text = fh.read()
        with open(dead, "w") as fh:   # the same host, a server port where nothing listens
            fh.write(text.replace(":%d" % realm.port, ":%d" % free_port()))
        cache = os.path.join(work, "offline")

        sandbox = AppSandbox(os.path.join(work, "sandbox"))
        sandbox.add_user(USER)
        port = sandbox.start_sshd(["AuthenticationMethods keyboard-interactive",
                                   "PrintMotd no", "PrintLastLog no", "MaxStartups 100"])
        askpass = os.path.join(work, "askpass")
        with open(askpass, "w") as fh:
            fh.write("#!/bin/sh\necho '%s'\n" % PASSWORD)
        os.chmod(askpass, 0o755)

        snippet = render_snippets(entry_script(work))["otpme-auth"]
        module = "%s %s" % (PAM_PYTHON, entry_script(work))

        def ours(config, cached=True):
            extra = " host_config=%s" % config
            if cached:
                extra += " offline_cache_dir=%s offline_key_func=%s" % (cache, key_func)
            text = snippet.replace(module, module + extra)
            return text if cached else text.replace(" cache_login_tokens", "")
        rest = "account required pam_permit.so\nsession required pam_permit.so\n"
        stacks = {
            "floor": "auth required pam_permit.so\n" + rest,
            "kdf": "auth required %s %s\n" % (PAM_PYTHON, kdf_module) + rest,
            "online": ours(conf) + "\n" + rest,
            "offline": ours(dead) + "\n" + rest,
            "nocache": ours(conf, cached=False) + "\n" + rest,
        }
        env = dict(os.environ, SSH_ASKPASS=askpass, SSH_ASKPASS_REQUIRE="force", DISPLAY=":0")

        def ssh(case):
            sandbox.service("sshd", stacks[case])
            start = time.perf_counter()
            proc = subprocess.run(
                ["ssh", "-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o",
                 "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o",
                 "PreferredAuthentications=keyboard-interactive", "-o",
                 "NumberOfPasswordPrompts=1", "-o", "BatchMode=no", "-p", str(port),
                 "%s@127.0.0.1" % USER, "true"], env=env, capture_output=True, text=True,
                stdin=subprocess.DEVNULL)
            wall = (time.perf_counter() - start) * 1000
            if proc.returncode != 0:
                raise SystemExit("%s: ssh failed (%d): %s\nsshd: %s" % (
                    case, proc.returncode, proc.stderr.strip(), sandbox.sshd_log()[-2000:]))
            return wall

        ssh("online")                    # writes the offline cache (one derivation)
        for case in stacks:              # warm every path once
            ssh(case)
        samples = {c: [] for c in stacks}
        for _ in range(args.rounds):
            for case in stacks:
                samples[case].append(ssh(case))
        med = {c: statistics.median(v) for c, v in samples.items()}
        print("Argon2i t=%d m=%d KiB p=%d (offline_key_func=%s); %d interleaved rounds; "
              "load average %s\n" % (t, m, p, key_func, args.rounds,
                                     " ".join(open("/proc/loadavg").read().split()[:3])))
        print("| case | median ms | min ms | max ms | / floor |")
        print("|---|---|---|---|---|")
        for case, label in LABELS:
            v = samples[case]
            print("| %s | %.0f | %.0f | %.0f | %.2f |" % (label, med[case], min(v), max(v),
                                                         med[case] / med["floor"]))
        print("\nonline / floor: %.2f (bar: <= 1.5)" % (med["online"] / med["floor"]))
        print("offline / kdf: %.3f (bar: <= 1.10)" % (med["offline"] / med["kdf"]))
        print("nocache / floor: %.2f; online - nocache: %+.0f ms (what cache_login_tokens "
              "adds to an online login)" % (med["nocache"] / med["floor"],
                                           med["online"] - med["nocache"]))
    finally:
        if sandbox is not None:
            sandbox.stop()
        if realm is not None:
            realm.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
