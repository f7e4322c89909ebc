"""The login path of ocra imports only what a challenge-response needs."""

import os

from otpme_auth.testing.imports import HEAVY, heavy, login_imports

FORBIDDEN = HEAVY + ("enum", "re", "qrcode", "secrets", "socket", "urllib",
                     "otpme_auth_ocra.tool", "otpme_auth_google_authenticator")


def test_login_path_imports(tmp_path):
    d = tmp_path / "ocra"
    d.mkdir(mode=0o700)
    (d / "root").write_text("otpme-ocra 1\nsuite=OCRA-1:HOTP-SHA1-6:C-QN08-PSHA1\n"
                            "key=3132333435363738393031323334353637383930\ncounter=0\n"
                            "counter_window=0\npin_hash=7110eda4d09e062aa5e4a390b0a572ac0d2c0220\n"
                            "disabled=0\n")
    os.chmod(d / "root", 0o600)
    code, modules = login_imports(tmp_path / "probe", ["ocra", "dir=%s" % d])
    assert code == "AUTH_ERR"
    assert heavy(modules, FORBIDDEN) == [], "the login path imported %s" % heavy(modules, FORBIDDEN)
    assert "otpme_auth_ocra.credfile" in modules
