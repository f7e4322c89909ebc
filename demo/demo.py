"""The README's demo: a realm on this machine, then logins through real libpam.

1. initialise a realm on the embedded server (SQLite), add a user with a
   password token whose second factor is a TOTP token with a PIN (seed 001
   section 27: the user types password + PIN + code), offline caching enabled;
2. add this host to the realm and join it (the host's own key, the realm CA pinned);
3. log in through real libpam (pam_wrapper + pam_python + pamtester): online;
4. stop the server and log in again: offline, from the encrypted cache
   (when the offline plugin is installed);
5. a wrong password is refused, and a misspelt option fails closed.

Nothing under /etc/pam.d is touched: the service files live in a temp dir.
A throw-away Unix user is created for the logins and removed at the end.
"""

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time

from otpme_auth.testing.pam import PamHarness, missing_requirements
from otpme_auth_server.testing import Realm

USER = "otpme-demo"
PASSWORD = "correct horse battery staple"


def say(text):
    print("\n== " + text, flush=True)


def show(result):
    for line in (result.stdout + result.stderr).strip().splitlines():
        print("   | " + line)
    print("   -> PAM_%s" % result.code)
    return result


def installed(name):
    from otpme_auth.registry import Registry
    return name in Registry(cache_dir=None).installed()


def current_code(secret):
    """What the user's authenticator app shows now (waits for a fresh time step if needed)."""
    from otpme_auth.otp.base32 import b32decode
    from otpme_auth.otp.hotp import totp
    if time.time() % 30 > 27:
        time.sleep(30 - time.time() % 30 + 0.1)
    return totp(b32decode(secret), time.time())


def main():
    missing = missing_requirements()
    if missing:
        sys.exit("demo needs: %s (./dev.sh demo installs them as root)" % ", ".join(missing))
    if os.geteuid() != 0:
        sys.exit("the demo creates a throw-away user and a home directory: run it as root")
    work = tempfile.mkdtemp(prefix="otpme-demo-")
    os.chmod(work, 0o755)
    home = os.path.join(work, "home", USER)
    created_user = False
    realm = None
    try:
        try:
            pwd.getpwnam(USER)
        except KeyError:
            subprocess.run(["useradd", "-M", "-d", home, "-s", "/bin/sh", USER], check=True)
            created_user = True

        say("1. a realm on the embedded server (SQLite), a user with password + PIN + TOTP")
        realm = Realm(os.path.join(work, "realm"))
        # The TOTP token's PIN is generated and shown once, as to the administrator.
        secret, pin = realm.add_user(USER, PASSWORD, second_factor="totp", offline=True,
                                     session_keep=True, pin=True)
        print("   realm example.org in %s; user %s, token %s/pass (password + PIN + TOTP, "
              "offline on); the TOTP token's PIN: %s" % (realm.server_dir, USER, USER, pin))

        say("2. this host joins the realm")
        jotp = realm.add_host("demo-host", tokens=["%s/pass" % USER])
        realm.start()
        conf = realm.join("demo-host", jotp)
        print("   server on %s; host config %s" % (realm.server, conf))

        pam = PamHarness(os.path.join(work, "pam"))
        options = "try_first_pass host_config=%s" % conf
        offline = installed("offline")
        if offline:
            options += " cache_login_tokens offline_cache_dir=%s" % os.path.join(work, "offline")
        if installed("sessionkeep"):
            # before the greeting options: post-login hooks run in line order, and
            # sessionkeep words the greeting (session restored / started)
            options += " sessionkeep session_dir=%s" % os.path.join(work, "run", "%u")
        if installed("greeting"):
            options += " online_greeting offline_greeting show_errors message_timeout=0"
        if installed("mkhomedir"):
            options += " create_home"
        pam.service("demo", pam.line(options))
        print("   PAM line: " + pam.line(options, log=False))

        say("3. log in online: the user types password + PIN + code in one prompt")
        show(pam.run("demo", USER, interleaved=True, answers=[PASSWORD + pin + current_code(secret)]))
        if os.path.isdir(home):
            st = os.stat(home)
            print("   home %s created, owner %s, mode %o"
                  % (home, pwd.getpwuid(st.st_uid).pw_name, st.st_mode & 0o7777))

        say("   a wrong password is refused (the server says why: show_errors)")
        show(pam.run("demo", USER, interleaved=True, answers=["not the password" + pin + current_code(secret)]))

        say("4. the server stops")
        realm.stop()
        if offline:
            say("   log in again, offline: password + PIN + a new code")
            time.sleep(30 - time.time() % 30 + 0.1)  # the next time step: codes are one-time
            show(pam.run("demo", USER, interleaved=True, answers=[PASSWORD + pin + current_code(secret)]))
        else:
            say("   without the offline plugin, the login is unavailable")
            show(pam.run("demo", USER, interleaved=True, answers=[PASSWORD + pin + current_code(secret)]))

        say("5. a misspelt option fails closed")
        pam.service("broken", pam.line(options + " cache_login_tokenz"))
        show(pam.run("broken", USER, interleaved=True, answers=[PASSWORD]))

        say("what the module logged (syslog authpriv; here also %s)" % pam.log_path)
        for line in pam.read_log():
            print("   | " + line)
        with open(pam.log_path) as fh:
            assert PASSWORD not in fh.read(), "the password reached the log"
        print("\nThe password appears in no log line.")
    finally:
        if realm is not None:
            realm.stop()
        if created_user:
            subprocess.run(["userdel", USER], check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
