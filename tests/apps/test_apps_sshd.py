"""A real OpenSSH sshd on 127.0.0.1, keyboard-interactive through our module.

libpam runs authenticate, setcred, acct_mgmt, open_session and close_session
for sshd on the lines of the service file: these tests log in with a real
client (paramiko) and look at what the user sees and what the log says.
"""

import time

import pytest

from otpme_auth.otp.base32 import b32decode
from otpme_auth.otp.hotp import totp

from appslib import PW, RealmSite, full_stack

pytestmark = [pytest.mark.pam, pytest.mark.slow]


def test_online_line_with_default_verifier_options(app_sandbox, realm):
    """Issue 9 point 1: ``try_first_pass host_config=... connect_timeout=...`` names no
    verifier; setcred on the same line used to reject host_config and sshd then failed
    the login (exit 255) after a successful authentication."""
    site = RealmSite(realm, app_sandbox)
    full_stack(app_sandbox, "sshd", app_sandbox.line(site.online))
    app_sandbox.start_sshd()
    result = app_sandbox.ssh("alice", [PW], command="id -un")
    assert result.ok, (result, app_sandbox.read_log(), app_sandbox.sshd_log())
    assert result.output.strip() == "alice"
    assert result.prompts == ["Password: "]
    assert "Failure setting user credentials" not in app_sandbox.sshd_log()
    assert any("authenticated alice" in line for line in app_sandbox.read_log())


def test_online_wrong_password_is_refused_and_logged(app_sandbox, realm):
    site = RealmSite(realm, app_sandbox)
    full_stack(app_sandbox, "sshd", app_sandbox.line(site.online))
    app_sandbox.start_sshd()
    result = app_sandbox.ssh("alice", ["wrong"] * 3)
    assert not result.ok and result.status is None
    log = app_sandbox.read_log()
    assert any("authentication of alice from 127.0.0.1 failed: DENY by online" in line
               for line in log), log


def test_offline_login_after_the_server_stops(app_sandbox, realm):
    site = RealmSite(realm, app_sandbox, offline=True)
    full_stack(app_sandbox, "sshd", app_sandbox.line(site.offline))
    app_sandbox.start_sshd()
    assert app_sandbox.ssh("alice", [PW]).ok, app_sandbox.read_log()
    realm.stop()
    result = app_sandbox.ssh("alice", [PW], command="echo offline")
    assert result.ok, (result, app_sandbox.read_log())
    assert any("authenticated alice from 127.0.0.1 offline" in line
               for line in app_sandbox.read_log())
    assert not app_sandbox.ssh("alice", ["not the password"]).ok


def _ga_file(app_sandbox, user, secret="2SH3V3GDW7ZNMGYE"):
    app_sandbox.write("/home/%s/.google_authenticator" % user,
                      '%s\n" RATE_LIMIT 3 30\n" WINDOW_SIZE 3\n" TOTP_AUTH\n' % secret,
                      mode=0o400, owner=user)
    return b32decode(secret)


def _code(key):
    if time.time() % 30 > 25:  # keep the code inside its step for the whole login
        time.sleep(30 - time.time() % 30 + 0.1)
    return totp(key, time.time())


def test_google_authenticator(app_sandbox):
    app_sandbox.add_user("bob")
    key = _ga_file(app_sandbox, "bob")
    full_stack(app_sandbox, "sshd", app_sandbox.line("google_authenticator"))
    app_sandbox.start_sshd()
    result = app_sandbox.ssh("bob", [_code(key)], command="id -un")
    assert result.ok, (result, app_sandbox.read_log(), app_sandbox.sshd_log())
    assert result.output.strip() == "bob"
    assert not app_sandbox.ssh("bob", ["000000"] * 3).ok


def test_message_timeout_does_not_slow_ssh(app_sandbox, realm):
    """Issue 9 point 4: sshd is a terminal application: a greeting never waits there."""
    site = RealmSite(realm, app_sandbox)
    full_stack(app_sandbox, "sshd",
               app_sandbox.line(site.online + " online_greeting message_timeout=30"))
    app_sandbox.start_sshd()
    result = app_sandbox.ssh("alice", [PW])
    assert result.ok, app_sandbox.read_log()
    # Not a timing threshold on the machine's speed: a 30 s wait would be unmistakable.
    assert result.seconds < 25


def test_the_shipped_snippets_in_debians_sshd_file(app_sandbox, realm):
    """Seed 001 section 20: Debian's /etc/pam.d/sshd with common-auth, common-account and
    common-session replaced by our snippets, as shipped (greetings, show_errors and the
    default message_timeout=2 included)."""
    from appslib import snippet
    site = RealmSite(realm, app_sandbox, offline=True)
    extra = "host_config=%s connect_timeout=2 offline_cache_dir=%s" % (site.conf, site.cache_dir)
    for name in ("otpme-auth", "otpme-account", "otpme-session"):
        snippet(app_sandbox, name, extra)
    with open("/etc/pam.d/sshd") as fh:
        text = fh.read()
    for common in ("auth", "account", "session"):
        text = text.replace("@include common-%s" % common, "@include otpme-%s" % common)
    app_sandbox.service("sshd", text)
    app_sandbox.start_sshd()
    result = app_sandbox.ssh("alice", [PW], command="id -un; test -d $HOME && echo home")
    assert result.ok, (result, app_sandbox.read_log(), app_sandbox.sshd_log())
    assert result.output.split() == ["alice", "home"]
    assert result.seconds < 25  # not message_timeout=2 per message: a terminal never waits
    log = app_sandbox.read_log()
    assert any("authenticated alice from 127.0.0.1 (by online)" in line for line in log), log
    refused = app_sandbox.ssh("alice", ["wrong"])
    assert not refused.ok
    assert any("Login failed: wrong credentials." in text for text in refused.instructions) or \
        any("wrong_credentials" in line for line in app_sandbox.read_log())
