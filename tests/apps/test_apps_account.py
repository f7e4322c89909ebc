"""The account phase (pam_acct_mgmt) through real sshd and sudo (issue 9 point 2).

The shipped ``otpme-account`` snippet used to refuse every account (PAM_PERM_DENIED
for an authenticated user: no plugin checked accounts, the module answered
PAM_IGNORE, and a stack where every module ignores fails).  Now it carries the
server's answer for this user on this host, for whichever module authenticated
them; local users are pam_unix's.
"""

import datetime

import pytest

from appslib import PW, RealmSite, snippet

pytestmark = [pytest.mark.pam, pytest.mark.slow]


def _services(sandbox, site, auth, account_options=None, name="sshd"):
    snippet(sandbox, "otpme-account", account_options or site.account())
    sandbox.service(name, auth, "@include otpme-account", "session required pam_permit.so",
                    "password required pam_deny.so")


def _not_today():
    day = (datetime.datetime.now().weekday() + 3) % 7
    return ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][day]


def test_snippet_accepts_a_realm_user_and_refuses_a_disabled_one(app_sandbox, realm):
    site = RealmSite(realm, app_sandbox)
    _services(app_sandbox, site, app_sandbox.line(site.online))
    app_sandbox.start_sshd()
    result = app_sandbox.ssh("alice", [PW], command="id -un")
    assert result.ok, (result, app_sandbox.read_log(), app_sandbox.sshd_log())
    realm.admin("user", "disable", "alice")
    # authenticated by an ssh key (another module): the account phase still asks the realm
    key = app_sandbox.authorize_key("alice")
    refused = app_sandbox.ssh("alice", key=key)
    assert not refused.ok
    log = app_sandbox.read_log()
    assert any("account of alice from 127.0.0.1 refused: refused by" in line
               and "user_disabled" in line for line in log), log
    realm.admin("user", "enable", "alice")
    assert app_sandbox.ssh("alice", key=key).ok


def test_login_times_and_host_lists(app_sandbox, realm):
    site = RealmSite(realm, app_sandbox)
    _services(app_sandbox, site, app_sandbox.line(site.online))
    app_sandbox.start_sshd()
    key = app_sandbox.authorize_key("alice")
    assert app_sandbox.ssh("alice", key=key).ok, app_sandbox.read_log()
    realm.admin("policy", "add", "office", "--type", "logintimes", "--times",
                "%s 00:00-23:59" % _not_today())
    realm.admin("user", "add_policy", "alice", "office")
    assert not app_sandbox.ssh("alice", key=key).ok
    assert any("outside_login_times" in line for line in app_sandbox.read_log())
    realm.admin("user", "remove_policy", "alice", "office")
    assert app_sandbox.ssh("alice", key=key).ok
    with open(site.conf, "a") as fh:
        fh.write("DENY_LOGIN_USERS = alice\n")
    assert not app_sandbox.ssh("alice", key=key).ok
    assert any("account of alice from 127.0.0.1 refused: alice is in DENY_LOGIN_USERS" in line
               for line in app_sandbox.read_log())


def test_local_user_authenticated_by_pam_unix_passes(app_sandbox, realm):
    """A local user the realm does not know: USER_UNKNOWN, ignored; pam_unix decides."""
    site = RealmSite(realm, app_sandbox)
    app_sandbox.add_user("localguy", password="local pw 1")
    _services(app_sandbox, site, "auth required pam_unix.so")
    app_sandbox.start_sshd()
    result = app_sandbox.ssh("localguy", ["local pw 1"], command="id -un")
    assert result.ok, (result, app_sandbox.read_log(), app_sandbox.sshd_log())
    assert any("account of localguy from 127.0.0.1: not ours to decide" in line
               for line in app_sandbox.read_log())


def test_offline_account_from_the_cache(app_sandbox, realm):
    site = RealmSite(realm, app_sandbox, offline=True)
    options = "%s offline_cache_dir=%s" % (site.account(), site.cache_dir)
    _services(app_sandbox, site, app_sandbox.line(site.offline), options)
    app_sandbox.start_sshd()
    assert app_sandbox.ssh("alice", [PW]).ok, app_sandbox.read_log()
    realm.stop()
    result = app_sandbox.ssh("alice", [PW])
    assert result.ok, (result, app_sandbox.read_log())
    assert any("account of alice from 127.0.0.1 accepted offline" in line
               for line in app_sandbox.read_log())
    # Without the offline cache on the account line, an unchecked account fails closed.
    snippet(app_sandbox, "otpme-account", site.account() + " online")
    app_sandbox.service("sshd", app_sandbox.line(site.offline),
                        "account [success=ok user_unknown=ignore default=bad] %s %s %s log_file=%s"
                        % ("/lib/security/pam_python.so", app_sandbox.script, site.account(),
                           app_sandbox.log_path),
                        "session required pam_permit.so")
    assert not app_sandbox.ssh("alice", [PW]).ok
    assert any("account of alice from 127.0.0.1 refused: could not be checked" in line
               for line in app_sandbox.read_log())


def test_sudo_with_the_account_snippet(app_sandbox, realm):
    site = RealmSite(realm, app_sandbox)
    app_sandbox.write("/etc/sudoers.d/alice", "alice ALL=(ALL) ALL\n", mode=0o440)
    _services(app_sandbox, site, app_sandbox.line(site.online), name="sudo")
    ok = app_sandbox.sudo("alice", [PW], ["id", "-un"])
    assert ok.returncode == 0 and ok.stdout.strip() == "root", (ok.stderr, app_sandbox.read_log())


def test_sudo_nopasswd_still_asks_the_realm(app_sandbox, realm):
    """sudo runs the account phase even when a NOPASSWD rule skips authentication."""
    site = RealmSite(realm, app_sandbox)
    app_sandbox.write("/etc/sudoers.d/alice", "alice ALL=(ALL) NOPASSWD: ALL\n", mode=0o440)
    _services(app_sandbox, site, app_sandbox.line(site.online), name="sudo")
    assert app_sandbox.sudo("alice", [], ["true"]).returncode == 0, app_sandbox.read_log()
    realm.admin("user", "disable", "alice")
    refused = app_sandbox.sudo("alice", [], ["true"])
    assert refused.returncode != 0
    assert any("account of alice refused" in line and "user_disabled" in line
               for line in app_sandbox.read_log())
