"""The boundaries of docs/architecture.md, checked in fresh interpreters."""

import json
import subprocess
import sys

LOGIN_PATH = ["otpme_auth.options", "otpme_auth.context", "otpme_auth.pipeline", "otpme_auth.host",
              "otpme_auth.login", "otpme_auth.pam_entry", "otpme_auth.registry"]


def modules_after(statement):
    code = "import json, sys; %s; print(json.dumps(sorted(sys.modules)))" % statement
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout))


def test_the_server_never_imports_the_login_path_or_a_plugin():
    loaded = modules_after("import otpme_auth.server.daemon, otpme_auth.server.admin, "
                           "otpme_auth.server.auth")
    assert not [m for m in LOGIN_PATH if m in loaded]
    assert not [m for m in loaded if m.startswith("otpme_auth_")]


def test_the_login_path_never_imports_the_server():
    loaded = modules_after("import otpme_auth.pam_entry, otpme_auth.login")
    assert not [m for m in loaded if m.startswith("otpme_auth.server")]


def test_the_public_names_resolve():
    import otpme_auth
    for name in otpme_auth.__all__:
        assert getattr(otpme_auth, name) is not None
