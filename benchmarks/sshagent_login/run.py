"""Cold ssh-agent logins (a key in a real ssh-agent) next to the pam_python floor.

    /usr/bin/python3 benchmarks/sshagent_login/run.py [--rounds 40]

Each sample is a fresh ``pamtester`` process under pam_wrapper, as in
benchmarks/cold_login.  Cases, interleaved:

* floor:    pam_python.so with a trivial module;
* ed25519:  otpme-auth with ``authorized_keys=`` and an ed25519 key in a real
            ``ssh-agent`` (the agent's own signature is well under a millisecond);
* rsa:      the same with a 3072-bit RSA key (rsa-sha2-512; the agent's signature
            costs a few ms: that is the agent's, not ours);
* offline:  the ``sshagent`` responder with ``online`` (no server: a host config that
            does not exist) and ``offline`` (``cache_login_tokens``): the offline plugin's
            ssh record, a fresh nonce signed by the agent's ed25519 key, checked against
            the record (the responder path of an online login, without the network).

The login's own cost is what is left over the floor: our agent protocol (no library),
and cryptography's import for the signature check; the import profile is printed after
the table.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from pambench import (  # noqa: E402
    PAM_PYTHON, build_venv, entry_script, interleave, print_import_profile, print_table, sh,
    write_floor, write_services,
)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the key file must be root-owned outside /tmp")
    work = tempfile.mkdtemp(prefix="otpme-bench-")
    keydir = tempfile.mkdtemp(prefix="otpme-bench-", dir="/run")
    os.chmod(keydir, 0o755)
    agent = None
    try:
        venv = build_venv(work, ["plugins/sshagent", "plugins/online", "plugins/offline"])
        sock = os.path.join(work, "agent.sock")
        agent = subprocess.Popen(["ssh-agent", "-D", "-a", sock], stdout=subprocess.DEVNULL)
        lines = {}
        for kind, opts in (("ed25519", ["-t", "ed25519"]), ("rsa", ["-t", "rsa", "-b", "3072"])):
            key = os.path.join(work, kind)
            sh("ssh-keygen", "-q", "-N", "", "-f", key, *opts)
            sh("ssh-add", "-q", key, env={"SSH_AUTH_SOCK": sock})
            shutil.copyfile(key + ".pub", os.path.join(keydir, kind))
            os.chmod(os.path.join(keydir, kind), 0o644)
            lines[kind] = "auth required %s %s authorized_keys=%s" % (
                PAM_PYTHON, entry_script(work), os.path.join(keydir, kind))
        # The offline case: root's ssh record of the ed25519 key, as an online login writes it.
        cache = os.path.join(keydir, "offline")
        with open(os.path.join(work, "ed25519.pub")) as fh:
            public = fh.read().strip()
        sh(os.path.join(venv, "bin", "python"), "-c", (
            "from otpme_auth_offline import sshlogin; from otpme_auth_offline.cache import "
            "OfflineCache; import time; sshlogin.store(OfflineCache(%r), 'root', 'root/ssh', "
            "{'public_key': %r, 'expiry': time.time() + 86400, 'unused_expiry': 86400}, "
            "{'status': 'ok', 'user': 'root', 'token': 'root/ssh', 'token_type': 'ssh'})")
           % (cache, public))
        lines["offline"] = ("auth required %s %s online host_config=%s cache_login_tokens "
                            "offline_cache_dir=%s sshagent" % (
                                PAM_PYTHON, entry_script(work), os.path.join(work, "none.conf"),
                                cache))
        os.environ["SSH_AUTH_SOCK"] = sock  # pamtester's environment, as sudo's
        services = write_services(work, dict(lines, floor=write_floor(work)))
        medians = interleave({"floor": lambda: "", "ed25519": lambda: "", "rsa": lambda: "",
                              "offline": lambda: ""}, services, "root", args.rounds)
        print_table("cold pamtester sshagent_keys logins, %d interleaved rounds" % args.rounds,
                    medians, [("floor", "pam_python floor (trivial module)"),
                              ("ed25519", "otpme-auth sshagent_keys, ed25519 key in ssh-agent"),
                              ("rsa", "otpme-auth sshagent_keys, RSA 3072 key in ssh-agent"),
                              ("offline", "otpme-auth online+sshagent+offline, no server: "
                               "offline ssh record, ed25519")])
        print_import_profile(work, ["otpme_auth_sshagent", "otpme_auth_sshagent.agent",
                                    "cryptography.hazmat.primitives.serialization"])
    finally:
        if agent is not None:
            agent.terminate()
            agent.wait()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(keydir, ignore_errors=True)


if __name__ == "__main__":
    main()
