"""The login path imports only what the enabled plugins need (docs/performance.md).

A real login, in a fresh Debian interpreter set up as pam_python sets it up,
must not import the heavy modules we keep out on purpose, the server, or any
plugin the line does not name.  Structural, not a timing threshold.
"""

import os

from otpme_auth.testing.imports import HEAVY, heavy, login_imports
from otpme_auth_passfile import CHEAPEST, hash_line

FORBIDDEN = HEAVY + ("re", "enum", "functools",  # the conversation's scanner, not re (~3 ms)
                     # otpme_auth.compare_digest, not hmac's (hmac imports warnings);
                     # the markers live in hookspecs (one module less per login)
                     "hmac", "warnings", "otpme_auth.markers",
                     # the example verifier checks Argon2id through argon2-cffi's bindings:
                     # hashlib loads OpenSSL (~3 ms), argon2's Python API takes ~16 ms
                     "hashlib", "_hashlib",
                     "argon2", "cryptography", "otpme_auth_testplugins", "otpme_auth_online",
                     "otpme_auth_offline", "otpme_auth_greeting", "otpme_auth_mkhomedir",
                     # PC/SC: a line without smartcard never opens it
                     "otpme_auth_smartcard", "yubikit", "ykman", "smartcard",
                     # D-Bus: a line without do_dot1x never talks to NetworkManager
                     "otpme_auth_dot1x", "jeepney",
                     # ssh-agent: a line without sshagent never loads paramiko
                     "otpme_auth_sshagent", "paramiko")


def test_login_path_imports_nothing_it_does_not_need(tmp_path):
    passwd = tmp_path / "passwd"
    passwd.write_text(hash_line("alice", "pw", **CHEAPEST) + "\n")
    os.chmod(passwd, 0o600)
    code, modules = login_imports(tmp_path, ["passfile", "passfile_path=%s" % passwd],
                                  user="alice", answers=["pw"])
    assert code == "SUCCESS"
    assert heavy(modules, FORBIDDEN) == [], "the login path imported %s" % heavy(modules, FORBIDDEN)
    assert "otpme_auth_passfile" in modules
