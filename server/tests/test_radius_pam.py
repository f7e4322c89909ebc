"""One code, one use, across RADIUS and a real PAM login (issue 14): FreeRADIUS from
radius-config and real libpam (pam_wrapper + pam_python + pamtester, the full
authenticate/setcred/acct_mgmt/open_session/close_session sequence) with the online plugin,
against one realm server."""

import re
import time

import pytest

from otpme_auth.otp.base32 import b32decode
from otpme_auth.otp.hotp import totp
from srvkit import Radius, accepted

pytestmark = pytest.mark.pam

PW = "correct horse battery"
FULL = ("authenticate", "setcred", "acct_mgmt", "open_session", "close_session")


def test_a_code_is_used_once_across_radius_and_pam(realm, pam_harness, tmp_path):
    secret = b32decode(realm.add_user("alice", PW, second_factor="totp"))
    jotp = realm.add_host("h1", tokens=["alice/pass"])
    out = realm.admin("client", "add", "sw1", "--address", "127.0.0.1")
    shared = re.search(r"shared secret .*: ([0-9a-f]{32})$", out.strip()).group(1)
    realm.start()
    conf = realm.join("h1", jotp)
    radius = Radius(realm.server_dir, tmp_path / "radius", start_server=False).start()
    try:
        opts = "online host_config=%s" % conf
        pam_harness.service("login", pam_harness.line(opts),
                            pam_harness.line(opts, type="account", control="sufficient"),
                            "account required pam_permit.so",
                            pam_harness.line(opts, type="session"),
                            "session required pam_permit.so")
        now = time.time()
        code = totp(secret, now)
        # Used through RADIUS first: the PAM login with the same code is refused ...
        assert accepted(radius.radtest("alice", PW + code, shared))
        pam_harness.run("login", "alice", *FULL, answers=[PW + code]).assert_code("AUTH_ERR")
        # ... and a code a PAM login used is refused through RADIUS.
        code2 = totp(secret, now + 30)
        pam_harness.run("login", "alice", *FULL, answers=[PW + code2]).assert_code("SUCCESS")
        out = radius.radtest("alice", PW + code2, shared)
        assert "Access-Reject" in out and not accepted(out), out
    finally:
        radius.stop()
