"""Offline logins against the key function alone, in one run.

    /work/main/.venv/bin/python benchmarks/offline_login/run.py [--rounds 15] [--key-func SPEC]

(the development venv: the realm runs its server from there; the PAM path is a fresh,
not editable install in a temporary venv)

The bar (issue 5): an offline login takes the KDF time plus at most 10 %.

A realm runs on loopback (the embedded server), a user with an offline-enabled
password token logs in once online through real libpam, which writes the
cache; then the server is stopped.  Each sample is a fresh ``pamtester``
process under pam_wrapper (a cold start of libpam, pam_python and the
interpreter), interleaved (floor, kdf, offline, floor, ...):

* floor:   pam_python.so with a trivial module that returns PAM_SUCCESS;
* kdf:     a trivial pam_python module that imports argon2 and runs one
           Argon2i derivation with exactly the cache's parameters: the KDF
           time alone, as the same kind of cold login;
* offline: otpme-auth's entry script, ``online`` + ``cache_login_tokens``:
           the connection to the stopped server is refused, the cache is
           unlocked (the same derivation), authenticated, and rewritten
           (last-used time, attempt counter: atomic writes with fsync).

We report medians of wall and child-CPU time and ``offline / kdf``: the login
must be within 1.10 of the KDF case.  otpme-auth and the plugins are installed
into a fresh venv, not editable (benchmarks/pambench.py).  Default parameters:
the option's default (``Argon2_i;min_mem:65536,max_mem:262144,iterations:3,threads:4``;
memory = RAM/32 clamped, so 256 MiB on a machine with 8 GiB or more).
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from pambench import (  # noqa: E402
    PAM_PYTHON, ROOT, build_venv, entry_script, interleave, print_table, sample, write_floor,
    write_services,
)

USER = "otpme-bench-off"
PASSWORD = "correct horse battery staple"

KDF_MODULE = """\
from argon2.low_level import Type, hash_secret_raw


def pam_sm_authenticate(pamh, flags, argv):
    hash_secret_raw(b"correct horse battery staple", b"0123456789abcdef", time_cost=%d,
                    memory_cost=%d, parallelism=%d, hash_len=32, type=Type.I)
    return pamh.PAM_SUCCESS


def pam_sm_setcred(pamh, flags, argv):
    return pamh.PAM_SUCCESS
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--key-func", default=None,
                        help="offline_key_func value (default: the option's default)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the benchmark creates a throw-away user and a root-only cache")
    sys.path.insert(0, ROOT)
    from otpme_auth_server.testing import Realm
    work = tempfile.mkdtemp(prefix="otpme-offline-bench-")
    os.chmod(work, 0o755)
    created = False
    realm = None
    try:
        try:
            subprocess.run(["id", USER], check=True, capture_output=True)
        except subprocess.CalledProcessError:
            subprocess.run(["useradd", "-M", "-d", "/nonexistent", USER], check=True)
            created = True
        venv = build_venv(work, packages=["plugins/online", "plugins/offline"])
        vpy = os.path.join(venv, "bin", "python")
        key_func = args.key_func or "Argon2_i;min_mem:65536,max_mem:262144,iterations:3,threads:4"
        params = subprocess.run(
            [vpy, "-c", "from otpme_auth_offline.keyfunc import parse_key_func, choose_params; "
             "p = choose_params(parse_key_func(%r)); print(p.iterations, p.memory_kib, p.threads)"
             % key_func], check=True, capture_output=True, text=True).stdout.split()
        t, m, p = (int(x) for x in params)
        kdf_module = os.path.join(work, "kdf.py")
        with open(kdf_module, "w") as fh:
            fh.write(KDF_MODULE % (t, m, p))
        # The kdf case needs argon2 importable by pam_python's interpreter: the venv's.
        site = subprocess.run([vpy, "-c", "import argon2, os; print(os.path.dirname("
                               "os.path.dirname(argon2.__file__)))"], check=True,
                              capture_output=True, text=True).stdout.strip()
        with open(kdf_module) as fh:
            text = fh.read()
        with open(kdf_module, "w") as fh:
            fh.write("import sys\nsys.path.insert(0, %r)\n" % site + text)

        realm = Realm(os.path.join(work, "realm"))
        realm.add_user(USER, PASSWORD, offline=True)
        jotp = realm.add_host("bench", tokens=["%s/pass" % USER])
        realm.start()
        conf = realm.join("bench", jotp)
        cache = os.path.join(work, "offline")
        line = "auth required %s %s try_first_pass host_config=%s cache_login_tokens " \
               "offline_cache_dir=%s offline_key_func=%s" % (
                   PAM_PYTHON, entry_script(work), conf, cache, key_func)
        services = write_services(work, {"floor": write_floor(work),
                                         "kdf": "auth required %s %s" % (PAM_PYTHON, kdf_module),
                                         "offline": line})
        sample("offline", services, USER, PASSWORD + "\n")   # online: writes the cache
        realm.stop()
        medians = interleave({"floor": lambda: "", "kdf": lambda: "",
                              "offline": lambda: PASSWORD + "\n"}, services, USER, args.rounds)
        print("Argon2i t=%d m=%d KiB p=%d (offline_key_func=%s)\n" % (t, m, p, key_func))
        print_table("cold pamtester logins, %d interleaved rounds" % args.rounds, medians, [
            ("floor", "pam_python floor (trivial module)"),
            ("kdf", "KDF alone: trivial module + one Argon2i derivation"),
            ("offline", "otpme-auth offline login (server stopped)"),
        ])
        (kw, kc), (ow, oc), (fw, _) = medians["kdf"], medians["offline"], medians["floor"]
        print("\noffline / kdf: wall %.3f, cpu %.3f (bar: <= 1.10)" % (ow / kw, oc / kc))
        print("offline - kdf: wall %+.1f ms, cpu %+.1f ms" % (ow - kw, oc - kc))
        print("KDF alone (kdf - floor): wall %.1f ms" % (kw - fw))
    finally:
        if realm is not None:
            realm.stop()
        if created:
            subprocess.run(["userdel", USER], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
