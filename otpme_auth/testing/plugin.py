"""pytest fixtures of the plugin kit.  Opt-in: a plugin's test suite enables it with

    # conftest.py
    pytest_plugins = ["otpme_auth.testing.plugin"]

(or ``pytest -p otpme_auth.testing.plugin``).  Installing otpme-auth adds nothing to
other projects' pytest sessions, and every fixture name starts with ``otpme_auth_``.
"""

import pytest

from . import ScriptedConversation, make_context, make_plugin, run_login, skip_or_fail


@pytest.fixture
def otpme_auth_run_login():
    """``run_login(plugins, args, user=, answers=, authtok=, function=)`` -> LoginResult."""
    return run_login


@pytest.fixture
def otpme_auth_make_context():
    """``make_context(user=, core={option: value}, answers=, authtok=)`` -> LoginContext."""
    return make_context


@pytest.fixture
def otpme_auth_make_plugin():
    """``make_plugin(name, options=[...], otpme_auth_<hook>=function, ...)`` -> plugin module."""
    return make_plugin


@pytest.fixture
def otpme_auth_conversation():
    """``scripted_conversation(*answers)`` -> ScriptedConversation."""
    return lambda *answers: ScriptedConversation(answers)


@pytest.fixture
def otpme_auth_pam(tmp_path):
    """A :class:`~otpme_auth.testing.pam.PamHarness` in a fresh temp dir.

    Skips when libpam-python, libpam-wrapper or pamtester are missing, unless
    ``OTPME_AUTH_REQUIRE_REAL=1`` (set in CI), where it fails instead.
    """
    from .pam import PamHarness, missing_requirements
    missing = missing_requirements()
    if missing:
        skip_or_fail("real-libpam tests need: %s" % ", ".join(missing))
    return PamHarness(tmp_path / "pam")


@pytest.fixture
def otpme_auth_apps(tmp_path):
    """A :class:`~otpme_auth.testing.apps.AppSandbox`: real sshd, sudo, su and
    pam-auth-update in a private mount namespace (the host's /etc is never written).

    Skips when something is missing (root, openssh-server, sudo, paramiko...),
    unless ``OTPME_AUTH_REQUIRE_REAL=1`` (set in CI), where it fails instead.
    """
    from .apps import AppSandbox, missing_requirements
    missing = missing_requirements()
    if missing:
        skip_or_fail("real-application tests need: %s" % ", ".join(missing))
    sandbox = AppSandbox(tmp_path / "apps")
    yield sandbox
    sandbox.stop()


@pytest.fixture
def otpme_auth_system_user(tmp_path):
    """``system_user(password=None, home=None)`` -> name of a throw-away Unix user.

    Needs root (useradd); the users are removed after the test.  Skips when
    not root, unless ``OTPME_AUTH_REQUIRE_REAL=1`` (CI), where it fails.
    """
    import os
    import subprocess
    import uuid
    if os.geteuid() != 0:
        skip_or_fail("creating a test user needs root")
    created = []

    def make(password=None, home=None):
        name = "otpt%s" % uuid.uuid4().hex[:10]
        home = home or str(tmp_path / "home" / name)
        subprocess.run(["useradd", "-M", "-d", home, "-s", "/bin/sh", name], check=True,
                       capture_output=True)
        created.append(name)
        if password is not None:
            subprocess.run(["chpasswd"], input="%s:%s\n" % (name, password), text=True,
                           check=True, capture_output=True)
        return name
    yield make
    for name in created:
        subprocess.run(["userdel", name], check=False, capture_output=True)
