"""The two deployments of docs/deployments.md, as Debian sets them up: our pam-auth-update
profile, ``pam-auth-update --enable`` in a private namespace, then ssh logins through the
resulting common-auth / common-account / common-session and Debian's own /etc/pam.d/sshd
(issue 9 point 6).

The old profile had priority 256, like pam_unix, and was the only one: "a second factor
for everyone" could not be set up with it (a local Unix password alone logged in).
"""

import re
import time

import pytest

from otpme_auth.install import render_snippets
from otpme_auth.otp.base32 import b32decode
from otpme_auth.otp.hotp import totp

from appslib import PW, RealmSite

pytestmark = [pytest.mark.pam, pytest.mark.slow]


def enable(sandbox, name, options):
    """Write our profile ``name`` with ``options`` on its module lines, and enable it."""
    text = render_snippets(sandbox.script)["pam-auth-update/" + name]
    lines = [line + (" %s log_file=%s" % (options, sandbox.log_path)
                     if sandbox.script in line else "") for line in text.splitlines()]
    sandbox.profile(name, "\n".join(lines) + "\n")
    sandbox.pam_auth_update("--enable", name)
    with open(sandbox.pamd + "/common-auth") as fh:
        return [line for line in fh.read().splitlines() if line and not line.startswith("#")]


def test_realm_users_beside_local_ones(app_sandbox, realm):
    site = RealmSite(realm, app_sandbox, offline=True)
    app_sandbox.add_user("localguy", password="local pw 1")
    auth = enable(app_sandbox, "otpme-auth", "host_config=%s connect_timeout=2 "
                  "offline_cache_dir=%s" % (site.conf, site.cache_dir))
    unix = next(i for i, line in enumerate(auth) if "pam_unix.so" in line)
    ours = next(i for i, line in enumerate(auth) if app_sandbox.script in line)
    assert unix < ours and "try_first_pass" in auth[ours], auth
    app_sandbox.start_sshd()
    local = app_sandbox.ssh("localguy", ["local pw 1"], command="id -un")
    assert local.ok and local.output.strip() == "localguy", (local, app_sandbox.sshd_log())
    assert local.prompts == ["Password: "]
    ok = app_sandbox.ssh("alice", [PW], command="id -un")
    assert ok.ok and ok.output.strip() == "alice", (ok, app_sandbox.read_log())
    assert ok.prompts == ["Password: "]   # one prompt: our line took pam_unix's password
    assert not app_sandbox.ssh("alice", ["wrong"] * 3).ok
    # The server down: the local user still logs in (the account phase leaves them to
    # pam_unix), and the realm user logs in offline.
    realm.stop()
    assert app_sandbox.ssh("localguy", ["local pw 1"]).ok, app_sandbox.read_log()
    assert app_sandbox.ssh("alice", [PW]).ok, app_sandbox.read_log()


def test_a_second_factor_for_everyone(app_sandbox, realm):
    site = RealmSite(realm, app_sandbox, user="alice")
    realm.admin("user", "add", "bob", "--no-login-token")
    out = realm.admin("token", "add", "--type", "totp", "bob/totp", "--no-pin")
    key = b32decode(re.search(r"secret=([A-Z2-7]+)", out).group(1))
    realm.admin("host", "add_token", "h1", "bob/totp")
    app_sandbox.add_user("bob", password="unix pw 1")
    auth = enable(app_sandbox, "otpme-auth-2fa", "host_config=%s connect_timeout=2" % site.conf)
    unix = next(i for i, line in enumerate(auth) if "pam_unix.so" in line)
    ours = next(i for i, line in enumerate(auth) if app_sandbox.script in line)
    assert unix < ours and auth[ours].split()[1] == "required", auth
    app_sandbox.start_sshd()
    if time.time() % 30 > 22:
        time.sleep(30 - time.time() % 30 + 0.1)
    code = totp(key, time.time())
    assert not app_sandbox.ssh("bob", ["unix pw 1", "000000"]).ok
    ok = app_sandbox.ssh("bob", ["unix pw 1", code], command="id -un")
    assert ok.ok and ok.output.strip() == "bob", (ok, app_sandbox.read_log())
    assert ok.prompts == ["Password: ", "OTP: "]
    # The Unix password alone never logs in, nor the code alone.
    assert not app_sandbox.ssh("bob", ["unix pw 1", ""]).ok
    assert not app_sandbox.ssh("bob", ["wrong", totp(key, time.time() + 30)]).ok
