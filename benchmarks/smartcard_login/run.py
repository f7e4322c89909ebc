"""A YubiKey login's added cost over a password login, through real libpam.

    .venv/bin/python benchmarks/smartcard_login/run.py [--rounds 20]

A real realm server on loopback, a private real pcscd with vsmartcard-vpcd and the
project's virtual YubiKey (plugins/smartcard/otpme_auth_smartcard/testing). Each sample is
a fresh ``pamtester`` process under pam_wrapper (cold libpam, pam_python, interpreter),
interleaved: a password login (``online``), then a card login (``online
use_smartcard=auto``, the card answering the server's challenge; no prompt). Both make
one pre-auth and one auth request. Reported: the median wall time of each and the
difference. The virtual card answers at once, so the difference is our own cost (imports of
yubikit/pyscard, PC/SC connect, SELECT, serial, the HMAC APDU round trip through pcscd)
minus the server's argon2id verification that the password login has and the card login
has not (cheap test parameters here); a real YubiKey adds its own answer time (and the
touch) on top.
Needs root (pcscd in a mount namespace). Run on an idle machine.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    from otpme_auth.testing.pam import PamHarness
    from otpme_auth_server.testing import Realm
    from otpme_auth_smartcard.testing import Pcscd

    secret = os.urandom(20)
    pw = "correct horse battery"
    with tempfile.TemporaryDirectory() as tmp:
        realm = Realm(os.path.join(tmp, "realm"))
        pcscd = Pcscd()
        try:
            realm.add_user("alice", pw)
            realm.admin("token", "add", "--type", "hmac", "alice/yk", "-", stdin=secret.hex() + "\n")
            jotp = realm.add_host("h1", tokens=["alice/pass", "alice/yk"])
            realm.start()
            conf = realm.join("h1", jotp)
            pam = PamHarness(os.path.join(tmp, "pam"))
            base = "online host_config=%s" % conf
            pam.service("pw", pam.line(base + " use_smartcard=false"))
            pam.service("card", pam.line(base + " use_smartcard=auto [smartcard_reader=Virtual PCD]"))
            card = pcscd.card(slots={2: secret})
            times = {"pw": [], "card": []}
            for _ in range(args.rounds):
                for service, answers in (("pw", [pw]), ("card", [])):
                    started = time.perf_counter()
                    result = pam.run(service, "alice", answers=answers, env=pcscd.env)
                    times[service].append(time.perf_counter() - started)
                    if not result.ok:
                        sys.exit("%s login failed: %s" % (service, result.output))
            pw_ms = statistics.median(times["pw"]) * 1000
            card_ms = statistics.median(times["card"]) * 1000
            print("rounds: %d" % args.rounds)
            print("password login (median wall):  %7.1f ms" % pw_ms)
            print("card login (median wall):      %7.1f ms" % card_ms)
            print("difference:                    %7.1f ms" % (card_ms - pw_ms))
            print("(password login includes one argon2id verification on the server, cheap "
                  "test parameters; the card login none)")
            own_cost(pcscd, args.rounds)
            del card
        finally:
            pcscd.stop()
            realm.stop()


# Our own time on the card path, in a fresh interpreter each time (cold imports): the card
# module and libpcsclite (ctypes) loaded, pre-auth's find() (context, readers, connect,
# SELECT, serial) and the HMAC (a thread, context, connect, SELECT, the HMAC APDU). The
# virtual card answers at once, so the HMAC time is PC/SC and vpcd round trips, no card time.
_OWN = """
import json, time
import otpme_auth, otpme_auth_smartcard   # loaded by the PAM module before any hook runs
t0 = time.perf_counter()
from otpme_auth_smartcard import card
card._lib()
t1 = time.perf_counter()
(c,) = card.find("Virtual PCD")
t2 = time.perf_counter()
c.hmac(2, b"x" * 32, 10)
t3 = time.perf_counter()
print(json.dumps([t1 - t0, t2 - t1, t3 - t2]))
"""


def own_cost(pcscd, rounds):
    import json
    import subprocess
    import compileall
    import otpme_auth_smartcard
    # An installed package has its .pyc (PYTHONDONTWRITEBYTECODE, set in some
    # environments, would leave a checkout compiling card.py at every cold start).
    compileall.compile_dir(os.path.dirname(otpme_auth_smartcard.__file__), quiet=1)
    samples = []
    for _ in range(rounds):
        done = subprocess.run([sys.executable, "-c", _OWN], env=dict(os.environ, **pcscd.env),
                              capture_output=True, text=True, check=True)
        samples.append(json.loads(done.stdout))
    load, find, answer = (statistics.median(s[i] for s in samples) * 1000 for i in range(3))
    print("our card path, cold, in-process (median of %d):" % rounds)
    print("  import card + load libpcsclite: %6.1f ms" % load)
    print("  find (pre-auth):                %6.1f ms" % find)
    print("  hmac (virtual card, instant):   %6.1f ms" % answer)
    print("  total:                          %6.1f ms" % (load + find + answer))


if __name__ == "__main__":
    main()
