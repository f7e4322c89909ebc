"""The login path of google_authenticator imports only what a verification needs."""

import os

from otpme_auth.testing.imports import HEAVY, heavy, login_imports

FORBIDDEN = HEAVY + ("enum", "re", "qrcode", "secrets", "socket", "urllib",
                     "otpme_auth_google_authenticator.enroll", "otpme_auth_ocra",
                     # OpenSSL (~3 ms): the HMAC is the built-in digests'; a module, not a flag
                     "hashlib", "hmac", "_hashlib", "__future__")


def test_login_path_imports(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text('2SH3V3GDW7ZNMGYE\n" RATE_LIMIT 9 30\n" DISALLOW_REUSE\n" TOTP_AUTH\n')
    os.chmod(secret, 0o600)
    code, modules = login_imports(tmp_path / "probe", [
        "google_authenticator", "secret=%s" % secret, "user=%d" % os.getuid()])
    assert code == "AUTH_ERR"
    assert heavy(modules, FORBIDDEN) == [], "the login path imported %s" % heavy(modules, FORBIDDEN)
    assert "otpme_auth_google_authenticator.gaverify" in modules
