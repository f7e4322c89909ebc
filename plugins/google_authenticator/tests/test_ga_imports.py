"""The login path of google_authenticator imports only what a verification needs.

A real login in a fresh Debian interpreter set up as pam_python sets it up (the
entry script's preamble), as tests/test_import_budget.py does for the core.
"""

import json
import os
import subprocess

from otpme_auth.install import render_script, site_dirs

FORBIDDEN = ["pluggy", "importlib.metadata", "logging", "typing", "dataclasses", "enum", "json", "re",
             "qrcode", "secrets", "socket", "urllib", "argparse",
             "otpme_auth_google_authenticator.enroll", "otpme_auth_ocra", "otpme_auth.server"]

PROBE = """
import json, sys
exec(open(SCRIPT).read().split("from otpme_auth")[0])
before = set(sys.modules)
from otpme_auth import pam_entry
from otpme_auth.context import PamItems
from otpme_auth.conversation import ScriptedConversation
from otpme_auth.login import run
outcome = run("authenticate", ARGS, "root", "probe", ScriptedConversation(["000000"]), PamItems(),
              cache_dir=CACHE)
print(json.dumps({"code": outcome.code, "modules": sorted(set(sys.modules) - before)}))
"""


def probe(tmp_path, args):
    script = tmp_path / "pam_otpme_auth.py"
    script.write_text(render_script(site_dirs(), str(tmp_path / "cache")))
    code = PROBE.replace("SCRIPT", repr(str(script))).replace("ARGS", repr(args)).replace(
        "CACHE", repr(str(tmp_path / "cache")))
    proc = subprocess.run(["/usr/bin/python3", "-I", "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_login_path_imports(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text('2SH3V3GDW7ZNMGYE\n" RATE_LIMIT 9 30\n" DISALLOW_REUSE\n" TOTP_AUTH\n')
    os.chmod(secret, 0o600)
    os.mkdir(tmp_path / "cache", 0o700)
    args = ["google_authenticator", "secret=%s" % secret, "user=%d" % os.getuid()]
    probe(tmp_path, args)                  # scans the registry, writes the cache
    second = probe(tmp_path, args)
    assert second["code"] == "AUTH_ERR"
    loaded = set(second["modules"])
    bad = sorted(m for m in loaded for f in FORBIDDEN if m == f or m.startswith(f + "."))
    assert bad == [], "the login path imported %s" % bad
    assert "otpme_auth_google_authenticator.gaverify" in loaded
