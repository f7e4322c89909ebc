"""ssh logins through a real sshd, interleaved against the pam_permit floor, in one run.

    sudo /work/main/.venv/bin/python benchmarks/ssh_login/run.py [--rounds 15] [--key-func SPEC]

(the development venv: the realm runs its server from there; the PAM path is a
fresh, not editable install in a temporary venv, as an administrator makes it)

The bars (issue 11): an online login with the shipped snippet at most 1.5x the
pam_permit floor; an offline login at most the KDF alone + 10 %.

A realm runs on loopback (the embedded server, SQLite).  ``/usr/sbin/sshd`` runs
on 127.0.0.1 in a private mount namespace (``unshare --mount``) where
``/etc`` is a bind mount of a copy (with the benchmark's user added), so the
host's files are never touched.  sshd reads its PAM file at every connection, so one sshd serves every
case: before each sample the benchmark writes ``/etc/pam.d/sshd`` (in the
namespace) for the case.  Each sample is the wall time of
``ssh -p PORT USER@127.0.0.1 true`` (OpenSSH client, keyboard-interactive, the
answer given by SSH_ASKPASS), interleaved per round:

* floor:   ``auth required pam_permit.so`` (the floor of an ssh login);
* kdf:     a trivial pam_python module that runs one Argon2i derivation with the
           cache's parameters (the KDF alone, as an ssh login);
* online:  the shipped ``otpme-auth`` snippet (``cache_login_tokens``,
           ``online_greeting offline_greeting show_errors``), the realm up, the
           offline cache fresh (so: no key derivation);
* offline: the same snippet with a host.conf whose server port is closed
           (connection refused: the cache is unlocked, one derivation);
* nocache: the snippet without ``cache_login_tokens``;
* online0, offline0, nocache0: the same with ``message_timeout=0`` (the greeting
  plugin's pause after the greeting, which the shipped snippet keeps).

Account and session stacks are ``pam_permit.so`` in every case.
"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from pambench import PAM_PYTHON, ROOT, build_venv, entry_script  # noqa: E402

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
NS_SETUP = """#!/bin/sh
set -e
W=$1
mount --bind "$W/etc" /etc
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/sshd
echo ready > "$W/ready"
exec sleep 2147483647
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("sshd did not start on port %d" % port)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--key-func", default=None,
                        help="offline_key_func value (default: the option's default)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: mount namespace, sshd, a root-only cache")
    sys.path.insert(0, ROOT)
    from otpme_auth.install import render_snippets
    from otpme_auth_server.testing import Realm
    work = tempfile.mkdtemp(prefix="otpme-ssh-bench-")
    os.chmod(work, 0o755)
    realm = holder = sshd = None
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

        # The namespace: pam.d and the user database as copies, the rest the host's.
        # A copy of /etc (a bind mount of the directory: the host's tools replace
        # /etc/passwd by rename, which would silently undo a bind mount of the file).
        subprocess.run(["cp", "-a", "/etc", os.path.join(work, "etc")], capture_output=True)
        for name, extra in (("passwd", "%s:x:54321:54321::/:/bin/sh\n" % USER),
                            ("shadow", "%s:*:19000:0:99999:7:::\n" % USER),
                            ("group", "%s:x:54321:\n" % USER)):
            with open(os.path.join(work, "etc", name), "a") as fh:
                fh.write(extra)
        setup = os.path.join(work, "setup.sh")
        with open(setup, "w") as fh:
            fh.write(NS_SETUP)
        holder = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh",
                                   setup, work])
        while not os.path.exists(os.path.join(work, "ready")):
            if holder.poll() is not None:
                raise SystemExit("the namespace set-up failed")
            time.sleep(0.05)
        ns = ["nsenter", "--mount=/proc/%d/ns/mnt" % holder.pid]
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                        os.path.join(work, "hostkey")], check=True)
        port = free_port()
        with open(os.path.join(work, "sshd_config"), "w") as fh:
            fh.write("ListenAddress 127.0.0.1\nPort %d\nHostKey %s\nUsePAM yes\n"
                     "KbdInteractiveAuthentication yes\nPasswordAuthentication no\n"
                     "PubkeyAuthentication no\nAuthenticationMethods keyboard-interactive\n"
                     "PidFile none\nPrintMotd no\nPrintLastLog no\nUseDNS no\n"
                     "MaxStartups 100\n" % (port, os.path.join(work, "hostkey")))
        sshd = subprocess.Popen(ns + ["/usr/sbin/sshd", "-D", "-e", "-f",
                                      os.path.join(work, "sshd_config")],
                                stderr=open(os.path.join(work, "sshd.log"), "w"))
        wait_port(port)
        askpass = os.path.join(work, "askpass")
        with open(askpass, "w") as fh:
            fh.write("#!/bin/sh\necho '%s'\n" % PASSWORD)
        os.chmod(askpass, 0o755)

        snippet = render_snippets(entry_script(work))["otpme-auth"]
        module = "%s %s" % (PAM_PYTHON, entry_script(work))

        def ours(options, config, cached=True):
            extra = " host_config=%s %s" % (config, options)
            if cached:
                extra += " offline_cache_dir=%s offline_key_func=%s" % (cache, key_func)
            text = snippet.replace(module, module + extra)
            return text if cached else text.replace(" cache_login_tokens", "")
        rest = "account required pam_permit.so\nsession required pam_permit.so\n"
        stacks = {
            "floor": "auth required pam_permit.so\n" + rest,
            "kdf": "auth required %s %s\n" % (PAM_PYTHON, kdf_module) + rest,
            "online": ours("", conf) + "\n" + rest,
            "offline": ours("", dead) + "\n" + rest,
            "nocache": ours("", conf, cached=False) + "\n" + rest,
            "online0": ours("message_timeout=0", conf) + "\n" + rest,
            "offline0": ours("message_timeout=0", dead) + "\n" + rest,
            "nocache0": ours("message_timeout=0", conf, cached=False) + "\n" + rest,
        }

        def ssh(case):
            with open(os.path.join(work, "etc", "pam.d", "sshd"), "w") as fh:
                fh.write(stacks[case])
            env = dict(os.environ, SSH_ASKPASS=askpass, SSH_ASKPASS_REQUIRE="force",
                       DISPLAY=":0")
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
                with open(os.path.join(work, "sshd.log")) as fh:
                    log = fh.read()[-2000:]
                log += subprocess.run(ns + ["sh", "-c", "getent passwd %s; ls -la /etc/passwd; "
                                            "tail -2 /etc/passwd; findmnt /etc/passwd" % USER],
                                      capture_output=True, text=True).stdout
                raise SystemExit("%s: ssh failed (%d): %s\nsshd: %s" % (
                    case, proc.returncode, proc.stderr.strip(), log))
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
        labels = [("floor", "pam_permit.so (floor)"),
                  ("kdf", "KDF alone (pam_python + one Argon2i derivation)"),
                  ("online", "online, shipped snippet, fresh cache"),
                  ("offline", "offline, shipped snippet (server port closed)"),
                  ("nocache", "online without cache_login_tokens"),
                  ("online0", "online, snippet + message_timeout=0"),
                  ("offline0", "offline, snippet + message_timeout=0"),
                  ("nocache0", "online without cache, message_timeout=0")]
        for case, label in labels:
            v = samples[case]
            print("| %s | %.0f | %.0f | %.0f | %.2f |" % (label, med[case], min(v), max(v),
                                                         med[case] / med["floor"]))
        print("\nonline / floor: %.2f (bar: <= 1.5)" % (med["online"] / med["floor"]))
        print("offline / kdf: %.3f (bar: <= 1.10)" % (med["offline"] / med["kdf"]))
        print("nocache / floor: %.2f" % (med["nocache"] / med["floor"]))
        print("with message_timeout=0 (the greeting's pause, issue 9's to remove): online / "
              "floor %.2f, offline / kdf %.3f, online - nocache %+.0f ms" % (
                  med["online0"] / med["floor"], med["offline0"] / med["kdf"],
                  med["online0"] - med["nocache0"]))
    finally:
        for proc in (sshd, holder):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(10)
        if realm is not None:
            realm.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
