"""sudo and su run by an unprivileged user, through our module, in a private namespace."""

import pytest

from appslib import PW, RealmSite, full_stack

pytestmark = [pytest.mark.pam, pytest.mark.slow]


def _sudoers(sandbox, user):
    sandbox.write("/etc/sudoers.d/%s" % user, "%s ALL=(ALL) ALL\n" % user, mode=0o440)


def test_sudo_online(app_sandbox, realm):
    site = RealmSite(realm, app_sandbox)
    _sudoers(app_sandbox, "alice")
    full_stack(app_sandbox, "sudo", app_sandbox.line(site.online),
               account=app_sandbox.line(site.account(), type="account"))
    ok = app_sandbox.sudo("alice", [PW], ["id", "-un"])
    assert ok.returncode == 0, (ok.stderr, app_sandbox.read_log())
    assert ok.stdout.strip() == "root"
    bad = app_sandbox.sudo("alice", ["wrong"] * 3)
    assert bad.returncode != 0
    assert any("authentication of alice failed: DENY by online" in line
               for line in app_sandbox.read_log())


def test_sudo_giving_up_is_not_an_error(app_sandbox, realm):
    """Issue 9 point 5: sudo's retry prompt gets end-of-input (the user gave up):
    that is logged as what it is, never as a module error."""
    site = RealmSite(realm, app_sandbox)
    _sudoers(app_sandbox, "alice")
    full_stack(app_sandbox, "sudo", app_sandbox.line(site.online))
    result = app_sandbox.sudo("alice", ["wrong"])   # then end of input at the retry prompt
    assert result.returncode != 0
    log = app_sandbox.read_log()
    assert any("authentication of alice failed: DENY by online" in line for line in log), log
    assert any("no answer" in line and "gave up" in line for line in log), log
    assert not any(" error: " in line for line in log), log
    assert not any("failed closed" in line for line in log), log


def test_su_online(app_sandbox, realm):
    site = RealmSite(realm, app_sandbox)
    app_sandbox.add_user("carol")
    full_stack(app_sandbox, "su", app_sandbox.line(site.online))
    ok = app_sandbox.su("carol", "alice", [PW], "id -un")
    assert ok.returncode == 0, (ok.stderr, app_sandbox.read_log())
    assert ok.stdout.strip() == "alice"
    bad = app_sandbox.su("carol", "alice", ["wrong"])
    assert bad.returncode != 0 and bad.stdout == ""
