"""The README's demo: logins through real libpam (pam_wrapper + pam_python + pamtester).

It installs the PAM entry script into a temp dir, writes a service file there
(nothing under /etc/pam.d is touched), creates a throw-away user (removed at
the end), and shows: a good login with a greeting and a new home directory,
a wrong password refused, and a bad option failing closed.
"""

import os
import pwd
import shutil
import subprocess
import sys
import tempfile

from otpme_auth.testing.pam import PamHarness, missing_requirements

USER = "otpme-demo"
PASSWORD = "correct horse battery staple"


def say(text):
    print("\n== " + text, flush=True)


def show(result):
    for line in (result.stdout + result.stderr).strip().splitlines():
        print("   | " + line)
    print("   -> PAM_%s" % result.code)


def plugin_installed(name):
    from otpme_auth.registry import Registry
    return name in Registry(cache_dir=None).installed()


def main():
    missing = missing_requirements()
    if missing:
        sys.exit("demo needs: %s (./dev.sh demo installs them as root)" % ", ".join(missing))
    if os.geteuid() != 0:
        sys.exit("the demo creates a throw-away user and a home directory: run it as root")
    from otpme_auth_passfile import hash_line
    work = tempfile.mkdtemp(prefix="otpme-demo-")
    home = os.path.join(work, "home", USER)
    created_user = False
    try:
        try:
            pwd.getpwnam(USER)
        except KeyError:
            subprocess.run(["useradd", "-M", "-d", home, "-s", "/bin/sh", USER], check=True)
            created_user = True
        pam = PamHarness(os.path.join(work, "pam"))
        passwd = os.path.join(work, "passwd")
        with open(os.open(passwd, os.O_WRONLY | os.O_CREAT, 0o600), "w") as fh:
            fh.write(hash_line(USER, PASSWORD) + "\n")

        options = "passfile passfile_path=%s" % passwd
        if plugin_installed("greeting"):
            options += " online_greeting show_errors message_timeout=0"
        if plugin_installed("mkhomedir"):
            options += " create_home"
        pam.service("demo", pam.line(options))
        say("the PAM service file (in %s)" % pam.service_dir)
        print("   " + pam.line(options, log=False))

        say("log in as %s with the right password" % USER)
        show(pam.run("demo", USER, answers=[PASSWORD]))
        if os.path.isdir(home):
            st = os.stat(home)
            print("   home %s created, owner %s, mode %o"
                  % (home, pwd.getpwuid(st.st_uid).pw_name, st.st_mode & 0o7777))

        say("log in with a wrong password")
        show(pam.run("demo", USER, answers=["not the password"]))

        say("a line with a misspelt option fails closed")
        pam.service("broken", pam.line(options + " cache_login_tokenz"))
        show(pam.run("broken", USER, answers=[PASSWORD]))

        say("what the module logged (syslog authpriv; here also %s)" % pam.log_path)
        for line in pam.read_log():
            print("   | " + line)
        assert PASSWORD not in open(pam.log_path).read(), "the password reached the log"
        print("\nThe password appears in no log line.")
    finally:
        if created_user:
            subprocess.run(["userdel", USER], check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
