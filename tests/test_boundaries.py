"""The boundaries of docs/architecture.md, checked in fresh interpreters."""

import ast
import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
LOGIN_PATH = ["otpme_auth.options", "otpme_auth.context", "otpme_auth.pipeline", "otpme_auth.host",
              "otpme_auth.login", "otpme_auth.pam_entry", "otpme_auth.registry"]


def modules_after(statement):
    code = "import json, sys; %s; print(json.dumps(sorted(sys.modules)))" % statement
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout))


def test_the_server_never_imports_the_login_path_or_a_plugin():
    loaded = modules_after("import otpme_auth_server.daemon, otpme_auth_server.admin, "
                           "otpme_auth_server.auth")
    assert not [m for m in LOGIN_PATH if m in loaded]
    # Of the framework, the server uses the one-time-code and ssh-signature primitives alone.
    framework = [m for m in loaded if m == "otpme_auth" or m.startswith("otpme_auth.")]
    assert not [m for m in framework if m not in ("otpme_auth", "otpme_auth.sshsig")
                and not m.startswith("otpme_auth.otp")]
    plugins = [m for m in loaded if m.startswith("otpme_auth_") and not m.startswith("otpme_auth_server")]
    assert not plugins


def test_the_login_path_never_imports_the_server():
    loaded = modules_after("import otpme_auth.pam_entry, otpme_auth.login")
    assert not [m for m in loaded if m.startswith("otpme_auth_server")]


def _imported_names(path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module


def test_the_framework_and_its_plugins_never_import_the_server_distribution():
    """The layout: framework (otpme_auth/), plugins (plugins/), server (server/), PAM glue (pam/)."""
    sources = [p for top in ("otpme_auth", "plugins", "examples", "pam")
               for p in (ROOT / top).rglob("*.py") if "tests" not in p.parts]
    assert len(sources) > 20
    offenders = sorted("%s imports %s" % (p.relative_to(ROOT), name) for p in sources
                       for name in _imported_names(p) if name.split(".")[0] == "otpme_auth_server")
    assert not offenders


def test_the_server_distribution_holds_the_server():
    assert (ROOT / "server" / "otpme_auth_server" / "daemon.py").exists()
    assert not (ROOT / "otpme_auth" / "server").exists()


def test_the_public_names_resolve():
    import otpme_auth
    for name in otpme_auth.__all__:
        assert getattr(otpme_auth, name) is not None
