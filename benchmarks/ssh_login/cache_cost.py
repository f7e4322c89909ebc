"""What cache_login_tokens adds to a cold online login, without sshd's noise.

    sudo .venv/bin/python benchmarks/ssh_login/cache_cost.py [--rounds 20]

The ssh benchmark (run.py) measures whole ssh logins, whose run-to-run spread
(~20 ms) is larger than what the offline cache now adds.  This one runs fresh
``pamtester`` logins under pam_wrapper (one new interpreter per login, as sshd's
PAM child has), interleaved per round: the pam_python floor, the shipped snippet
online with a fresh offline cache, and the same without ``cache_login_tokens``
(realm up, the same fresh, not editable install as run.py).  Then one more login
of each with the ``trace`` option, whose per-hook times say where the difference
goes (the offline plugin's pre-auth and post-login).
"""

import argparse
import os
import re
import shutil
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
from pambench import (PAM_PYTHON, build_venv, entry_script, interleave, print_table,  # noqa: E402
                      sample, write_floor, write_services)

USER = "otpmebench"
PASSWORD = "correct horse battery staple"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the offline cache is root-only")
    sys.path.insert(0, ROOT)
    from otpme_auth.install import render_snippets
    from otpme_auth_server.testing import Realm
    work = tempfile.mkdtemp(prefix="otpme-cache-cost-")
    os.chmod(work, 0o755)
    realm = None
    try:
        build_venv(work, packages=["plugins/online", "plugins/offline", "plugins/greeting"])
        realm = Realm(os.path.join(work, "realm"))
        realm.add_user(USER, PASSWORD, offline=True)
        jotp = realm.add_host("bench", tokens=["%s/pass" % USER])
        realm.start()
        conf = realm.join("bench", jotp)
        module = "%s %s" % (PAM_PYTHON, entry_script(work))
        snippet = render_snippets(entry_script(work))["otpme-auth"]
        log = os.path.join(work, "trace.log")

        def ours(cached, extra=""):
            if cached:   # (offline's options exist only where the plugin is enabled)
                extra += " offline_cache_dir=%s" % os.path.join(work, "offline")
            text = snippet.replace(module, module + " host_config=%s %s" % (conf, extra))
            return text if cached else text.replace(" cache_login_tokens", "")
        services = write_services(work, {
            "floor": write_floor(work),
            "online": ours(True),
            "nocache": ours(False),
            "online-trace": ours(True, "trace log_file=%s" % log),
            "nocache-trace": ours(False, "trace log_file=%s" % log),
        })
        answers = lambda: PASSWORD + "\n"  # noqa: E731
        sample("online", services, USER, answers())   # writes the cache (one derivation)
        medians = interleave({"floor": answers, "online": answers, "nocache": answers},
                             services, USER, args.rounds)
        print("load average %s; %d interleaved rounds\n"
              % (" ".join(open("/proc/loadavg").read().split()[:3]), args.rounds))
        print_table("cold pamtester logins (authenticate)", medians,
                    [("floor", "pam_python floor (trivial module)"),
                     ("online", "online, shipped snippet, fresh cache"),
                     ("nocache", "online without cache_login_tokens")])
        print("\nonline - nocache: %+.1f ms wall, %+.1f ms cpu"
              % (medians["online"][0] - medians["nocache"][0],
                 medians["online"][1] - medians["nocache"][1]))
        for case in ("online-trace", "nocache-trace"):
            sample(case, services, USER, answers())
        print("\nper-hook times of one more login each (the trace option):\n")
        with open(log) as fh:
            for line in fh:
                found = re.search(r"\((\S+):auth\): \[(\S+)\] trace: (\S+) -> .*\(([\d.]+ ms)\)",
                                  line)
                if found:
                    print("  %-14s %-10s %-34s %s" % found.groups())
    finally:
        if realm is not None:
            realm.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
