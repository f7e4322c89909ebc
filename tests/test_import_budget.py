"""The login path imports only what the enabled plugins need (docs/performance.md).

A real login, in a fresh Debian interpreter set up as pam_python sets it up,
must not import the heavy modules we keep out on purpose, the server, or any
plugin the line does not name.  Structural, not a timing threshold.
"""

import json
import os
import subprocess

from otpme_auth.install import render_script, site_dirs
from otpme_auth_passfile import hash_line

FORBIDDEN = ["pluggy", "importlib.metadata", "attrs", "attr", "logging", "typing", "dataclasses",
             "json", "argon2", "cryptography", "otpme_auth.server", "otpme_auth.manager",
             "otpme_auth_testplugins.tripwire", "otpme_auth_testplugins.raiser"]

PROBE = """
import json, runpy, sys
runpy_ns = None
exec(open(SCRIPT).read().split("from otpme_auth")[0])
before = set(sys.modules)
from otpme_auth import pam_entry
from otpme_auth.context import PamItems
from otpme_auth.conversation import ScriptedConversation
from otpme_auth.login import run
outcome = run("authenticate", ARGS, "alice", "probe", ScriptedConversation(["pw"]), PamItems(),
              cache_dir=CACHE)
print(json.dumps({"code": outcome.code, "modules": sorted(set(sys.modules) - before)}))
"""


def probe(tmp_path, args):
    script = tmp_path / "pam_otpme_auth.py"
    script.write_text(render_script(site_dirs(), str(tmp_path / "cache")))
    code = PROBE.replace("SCRIPT", repr(str(script))).replace("ARGS", repr(args)).replace(
        "CACHE", repr(str(tmp_path / "cache")))
    # -I: no environment, no user site, like an embedded interpreter; runpy is
    # imported only to drop it from the comparison below.
    proc = subprocess.run(["/usr/bin/python3", "-I", "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_login_path_imports_nothing_it_does_not_need(tmp_path):
    passwd = tmp_path / "passwd"
    passwd.write_text(hash_line("alice", "pw", iterations=1000) + "\n")
    os.chmod(passwd, 0o600)
    os.mkdir(tmp_path / "cache", 0o700)
    args = ["passfile", "passfile_path=%s" % passwd]
    first = probe(tmp_path, args)          # scans the registry and writes the cache
    assert first["code"] == "SUCCESS"
    second = probe(tmp_path, args)         # an ordinary login: from the cache
    assert second["code"] == "SUCCESS"
    loaded = set(second["modules"])
    bad = sorted(m for m in loaded for f in FORBIDDEN if m == f or m.startswith(f + "."))
    assert bad == [], "the login path imported %s" % bad
    assert "otpme_auth_passfile" in loaded
