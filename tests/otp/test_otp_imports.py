"""The primitives stay cheap to import: they sit on the PAM login path."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FORBIDDEN = {"typing", "dataclasses", "enum", "re", "attrs", "logging", "json", "secrets", "random",
             "base64", "collections", "datetime",
             # `from __future__ import annotations` imports a module (~0.1 ms at every login)
             "__future__"}

PROBE = """
import sys
sys.path[:0] = {paths!r}
import otpme_auth, otpme_auth.otp  # the host package is measured elsewhere
before = set(sys.modules)
import {module}
print(" ".join(sorted(set(sys.modules) - before)))
"""


@pytest.mark.parametrize("module,paths", [
    ("otpme_auth.otp.hotp", []),
    ("otpme_auth.otp.base32", []),
    ("otpme_auth.otp.ocra", []),
    ("otpme_auth_google_authenticator.gaverify", [os.path.join(ROOT, "plugins", "google_authenticator")]),
    ("otpme_auth_ocra.credfile", [os.path.join(ROOT, "plugins", "ocra")]),
    ("otpme_auth_ocra.prompts", [os.path.join(ROOT, "plugins", "ocra")]),
])
def test_no_heavy_imports(module, paths):
    out = subprocess.run([sys.executable, "-c", PROBE.format(paths=[ROOT, *paths], module=module)],
                         check=True, capture_output=True, text=True).stdout.split()
    assert not FORBIDDEN & set(out), out


def test_totp_does_not_load_ocra():
    probe = PROBE.format(paths=[ROOT], module="otpme_auth.otp.hotp, otpme_auth.otp.base32")
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    assert "otpme_auth.otp.ocra" not in out.split()
