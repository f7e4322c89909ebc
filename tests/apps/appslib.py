"""Shared set-ups of the real-application tests: a realm, a joined host, users in a sandbox.

``RealmSite(realm, sandbox)`` starts a real server, adds a user to the realm and
the same user (a local account without a password) to the sandbox, joins the host,
and offers the PAM options of a line that logs in against it.
"""

import os

PW = "correct horse battery"
FAST_KDF = "offline_key_func=Argon2_i;min_mem:8,max_mem:8,iterations:1,threads:1"


def full_stack(sandbox, name, auth, account="account required pam_permit.so",
               session="session required pam_permit.so"):
    """A service file with all four stacks, as the applications' own files have them."""
    return sandbox.service(name, auth, account, session,
                           "password required pam_deny.so")


class RealmSite:
    """A realm on loopback with ``user`` (password token), and this host joined as h1."""

    def __init__(self, realm, sandbox, user="alice", offline=False, second_factor=None,
                 start=True):
        self.realm, self.sandbox, self.user = realm, sandbox, user
        self.secret = realm.add_user(user, PW, second_factor=second_factor, offline=offline)
        jotp = realm.add_host("h1", tokens=["%s/pass" % user])
        if start:
            realm.start()
            self.conf = realm.join("h1", jotp)
        sandbox.add_user(user)
        self.cache_dir = os.path.join(sandbox.dir, "offline")

    @property
    def online(self):
        """Options of an online line that names no verifier (seed 000's minimal entry)."""
        return "try_first_pass host_config=%s connect_timeout=2" % self.conf

    @property
    def offline(self):
        return "%s cache_login_tokens offline_cache_dir=%s %s" % (self.online, self.cache_dir,
                                                                 FAST_KDF)

    def account(self):
        return "host_config=%s connect_timeout=2" % self.conf


def snippet(sandbox, name, options=""):
    """The shipped pam.d snippet ``name`` (otpme-auth, otpme-account, otpme-session) for the
    sandbox's entry script, with ``options`` (and log_file) added to our module's lines."""
    from otpme_auth.install import render_snippets
    text = render_snippets(sandbox.script)[name]
    lines = []
    for line in text.splitlines():
        if sandbox.script in line:
            line = "%s %s log_file=%s" % (line, options, sandbox.log_path)
        lines.append(line)
    sandbox.service(name, *lines)
    return lines
