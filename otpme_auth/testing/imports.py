"""What a real login imports: for tests that keep a plugin's login path light.

:func:`login_imports` runs one login in a fresh Debian ``/usr/bin/python3 -I``
set up exactly as pam_python sets it up (the entry script's preamble), after a
first login that scans the registry and writes its cache, and returns the
modules the login imported.  :func:`heavy` picks out those that a login must
not pay for (docs/performance.md).
"""

import json
import os
import subprocess

from ..install import render_script, site_dirs

#: Modules no login path needs (plugins add their CLI-only modules).
HEAVY = ("pluggy", "importlib.metadata", "attrs", "attr", "logging", "typing", "dataclasses",
         "json", "argparse", "otpme_auth_server", "otpme_auth.manager")

_PROBE = """
import json, sys
exec(open(%(script)r).read().split("from otpme_auth")[0])
# An editable (development) install's .pth files, which the registry reads at the
# login, import what an administrator's installation never loads: read them first.
from otpme_auth.registry import pth_dirs, read_pth
read_pth(pth_dirs(_added))
before = set(sys.modules)
# Also every module the login's code asks for by name, loaded already or not: in a
# development venv an editable install's finder has loaded some (re, for one) before
# the login starts, which an administrator's installation has not.
import builtins
requested = set()
_import = builtins.__import__
def _recording_import(name, globals=None, locals=None, fromlist=(), level=0):
    if level == 0:
        requested.add(name)
    return _import(name, globals, locals, fromlist, level)
builtins.__import__ = _recording_import
from otpme_auth import pam_entry
from otpme_auth.context import PamItems
from otpme_auth.conversation import ScriptedConversation
from otpme_auth.login import run
outcome = run("authenticate", %(args)r, %(user)r, "probe", ScriptedConversation(%(answers)r),
              PamItems(), cache_dir=%(cache)r, site_dirs=SITE_DIRS)
builtins.__import__ = _import
print(json.dumps({"code": outcome.code,
                  "modules": sorted((set(sys.modules) - before) | requested)}))
"""


def login_imports(directory, args, user="root", answers=("000000",)):
    """``(pam_code, modules)`` of a login with the PAM line ``args`` (a list).

    ``directory`` is a scratch dir (the entry script and the plugin cache go there).
    """
    directory = str(directory)
    cache = os.path.join(directory, "cache")
    os.makedirs(cache, mode=0o700, exist_ok=True)
    script = os.path.join(directory, "pam_otpme_auth.py")
    with open(script, "w") as fh:
        fh.write(render_script(site_dirs(), cache))
    code = _PROBE % {"script": script, "args": list(args), "user": user,
                     "answers": list(answers), "cache": cache}
    result = None
    for _ in range(2):  # the first login scans the registry; the second is an ordinary one
        proc = subprocess.run(["/usr/bin/python3", "-I", "-c", code], capture_output=True,
                              text=True)
        if proc.returncode != 0:
            raise AssertionError("the probe login failed: %s" % proc.stderr[-2000:])
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result["code"], set(result["modules"])


def heavy(modules, forbidden=HEAVY):
    """The modules in ``modules`` that are, or are inside, one of ``forbidden``."""
    return sorted(m for m in modules for f in forbidden if m == f or m.startswith(f + "."))
