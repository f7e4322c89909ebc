"""Repository-wide pytest settings: this repository's own use of the plugin kit.

The kit (``otpme_auth.testing.plugin``) and the server's realm fixture
(``otpme_auth_server.testing``) are opt-in, with ``otpme_auth_`` names; this file
enables both for the repository's tests, gives them the short names our tests use,
and makes a skipped test fail the run under OTPME_AUTH_REQUIRE_REAL=1 (CI).

CI runs property-based tests derandomized: the same examples every run, so a red CI
is about the change, not about the draw.  Developers' runs stay random and keep
exploring; what they find becomes a fixed test.
"""

import os

import pytest
from hypothesis import HealthCheck, settings

pytest_plugins = ["otpme_auth.testing.plugin", "otpme_auth_server.testing"]

# Generation speed is not what these tests are about, and a loaded 2-core machine
# (CI, or a developer running other work) makes the too_slow health check flaky.
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", derandomize=True, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") == "true" else "dev")


# -- short names for the kit's fixtures, in this repository only ------------------

@pytest.fixture
def run_login(otpme_auth_run_login):
    return otpme_auth_run_login


@pytest.fixture
def make_context(otpme_auth_make_context):
    return otpme_auth_make_context


@pytest.fixture
def make_plugin(otpme_auth_make_plugin):
    return otpme_auth_make_plugin


@pytest.fixture
def scripted_conversation(otpme_auth_conversation):
    return otpme_auth_conversation


@pytest.fixture
def pam_harness(otpme_auth_pam):
    return otpme_auth_pam


@pytest.fixture
def system_user(otpme_auth_system_user):
    return otpme_auth_system_user


@pytest.fixture
def app_sandbox(otpme_auth_apps):
    return otpme_auth_apps


@pytest.fixture
def realm(otpme_auth_realm):
    return otpme_auth_realm


# -- OTPME_AUTH_REQUIRE_REAL=1: a skipped test fails the run -----------------
#
# Tests of real components (libpam, PostgreSQL, the peer modules, a tmpfs) skip
# where those are missing, so that a developer's laptop can run the rest.  In
# CI every one of them must run: a skip there means an install step is broken.

_SKIPPED = []


def pytest_runtest_logreport(report):
    import os
    if (report.skipped and not hasattr(report, "wasxfail")
            and os.environ.get("OTPME_AUTH_REQUIRE_REAL") == "1"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _SKIPPED.append("%s: %s" % (report.nodeid, reason))


def pytest_sessionfinish(session, exitstatus):
    if _SKIPPED and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    if _SKIPPED:
        terminalreporter.section("OTPME_AUTH_REQUIRE_REAL=1: skipped tests fail the run")
        for line in _SKIPPED:
            terminalreporter.write_line(line)
