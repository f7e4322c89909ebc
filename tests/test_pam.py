"""End to end through real libpam: pamtester under pam_wrapper, pam_python, our module.

The stacks are written to a temp service dir; pam_unix is the real neighbour
module for stacking tests.  The plugins ``passfile`` (example third-party),
``raiser`` and ``tripwire`` (tests/plugins) are installed in the test venv.
"""

import os

import pytest

from otpme_auth_passfile import hash_line

pytestmark = pytest.mark.pam
PASSWORD = "correct horse battery"


@pytest.fixture
def stack(pam_harness, system_user, tmp_path):
    """(harness, user, options-for-passfile) with the user's password in a passfile."""
    user = system_user(password=PASSWORD)
    passwd = tmp_path / "passwd"
    passwd.write_text(hash_line(user, PASSWORD) + "\n")
    os.chmod(passwd, 0o600)
    return pam_harness, user, "passfile passfile_path=%s" % passwd


def test_success_and_wrong_answer(stack):
    pam, user, opts = stack
    pam.service("svc", pam.line(opts))
    ok = pam.run("svc", user, answers=[PASSWORD])
    assert ok.code == "SUCCESS" and "Password:" in ok.output
    wrong = pam.run("svc", user, answers=["not it"])
    assert wrong.code == "AUTH_ERR"
    assert any("wrong password" in line for line in wrong.log)


def test_bad_option_fails_closed_with_one_line(stack):
    pam, user, opts = stack
    pam.service("svc", pam.line(opts + " cache_login_tokenz"))
    result = pam.run("svc", user, answers=[PASSWORD])
    assert result.code == "SERVICE_ERR"
    errors = [line for line in result.log if " error: " in line]
    assert len(errors) == 1 and "cache_login_tokenz" in errors[0]
    assert "Password:" not in result.output  # nothing asked


def test_bad_value_fails_closed(stack):
    pam, user, opts = stack
    pam.service("svc", pam.line(opts.replace("passfile_path=", "passfile_path=relative")))
    result = pam.run("svc", user, answers=[PASSWORD])
    assert result.code == "SERVICE_ERR"
    assert any("passfile_path" in line and "absolute" in line for line in result.log)


def test_plugin_that_raises_fails_closed(stack):
    pam, user, opts = stack
    pam.service("svc", pam.line(opts + " raiser"))
    result = pam.run("svc", user, answers=[PASSWORD])
    assert result.code == "SERVICE_ERR"
    assert any("[raiser]" in line and "RuntimeError" in line for line in result.log)
    assert "Traceback" not in result.output


def test_installed_plugin_not_on_the_line_never_runs(stack):
    pam, user, opts = stack
    pam.service("svc", pam.line(opts))
    assert pam.run("svc", user, answers=[PASSWORD]).code == "SUCCESS"
    # ...and it would have been noticed: the same plugin, enabled, refuses everything
    pam.service("trip", pam.line(opts + " tripwire"))
    assert pam.run("trip", user, answers=[PASSWORD]).code == "AUTH_ERR"


def test_use_first_pass_after_pam_unix(stack):
    pam, user, opts = stack
    pam.service("svc", "auth required pam_unix.so", pam.line(opts + " use_first_pass"))
    result = pam.run("svc", user, answers=[PASSWORD])
    assert result.code == "SUCCESS"
    assert result.output.count("Password:") == 1  # pam_unix asked; we did not


def test_use_first_pass_with_nothing_before_fails(stack):
    pam, user, opts = stack
    pam.service("svc", pam.line(opts + " use_first_pass"))
    result = pam.run("svc", user, answers=[PASSWORD])
    assert result.code == "AUTH_ERR" and "Password:" not in result.output


def test_try_first_pass_falls_back_to_a_prompt(stack):
    pam, user, opts = stack
    pam.service("svc", "auth optional pam_unix.so", pam.line(opts + " try_first_pass"))
    # pam_unix gets a wrong password (it is optional); we try it, then ask ourselves
    result = pam.run("svc", user, answers=["some other password", PASSWORD])
    assert result.code == "SUCCESS"
    assert result.output.count("Password:") == 2
    assert any("try_first_pass" in line for line in result.log)


def test_prompted_password_is_handed_to_the_next_module(stack):
    pam, user, opts = stack
    pam.service("svc", pam.line(opts), "auth required pam_unix.so use_first_pass")
    result = pam.run("svc", user, answers=[PASSWORD])
    assert result.code == "SUCCESS" and result.output.count("Password:") == 1


def test_no_secret_in_the_log_with_debug_and_trace(stack):
    pam, user, opts = stack
    pam.service("svc", pam.line(opts + " debug trace"))
    pam.run("svc", user, answers=[PASSWORD])
    pam.run("svc", user, answers=[PASSWORD + "x"])
    log = pam.read_log()
    assert any("trace:" in line for line in log)
    for line in log:
        assert PASSWORD not in line


def test_registry_cache_is_written_and_safe(stack):
    pam, user, opts = stack
    pam.service("svc", pam.line(opts))
    assert pam.run("svc", user, answers=[PASSWORD]).code == "SUCCESS"
    caches = os.listdir(pam.cache_dir)
    assert len(caches) == 1
    st = os.stat(os.path.join(pam.cache_dir, caches[0]))
    assert st.st_uid == 0 and not st.st_mode & 0o022
    assert pam.run("svc", user, answers=[PASSWORD]).code == "SUCCESS"  # from the cache


def test_the_other_pam_functions(stack):
    pam, user, opts = stack
    pam.service("svc", pam.line(opts), pam.line("", type="session"),
                pam.line("", type="account", control="sufficient"),
                "account required pam_permit.so")
    result = pam.run("svc", user, "authenticate", "acct_mgmt", "open_session", "close_session",
                     answers=[PASSWORD])
    assert result.code == "SUCCESS", result.output


def test_pam_silent_drops_messages_but_not_prompts(stack):
    """pamtester cannot pass PAM_SILENT; the entry's conversation is checked directly."""
    from otpme_auth.pam_entry import _Conversation

    class Handle:
        PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON, PAM_TEXT_INFO, PAM_ERROR_MSG = 1, 2, 4, 3
        exception = RuntimeError
        sent = []

        def Message(self, style, text):
            return (style, text)

        def conversation(self, message):
            self.sent.append(message)
            return type("R", (), {"resp": "answer"})()
    handle = Handle()
    conv = _Conversation(handle, silent=True)
    assert conv.silent
    conv.info("hello")
    assert conv.prompt("Password: ") == "answer"
    assert handle.sent == [(1, "Password: ")]


def test_pam_items_reach_the_module(stack, tmp_path):
    """PAM_RHOST set by the application is what plugins see as ctx.rhost."""
    pam, user, opts = stack
    pam.service("svc", pam.line(opts))
    assert pam.run("svc", user, answers=[PASSWORD], items={"rhost": "198.51.100.7"}).ok
    assert pam.run("svc", user, answers=["wrong"], items={"rhost": "198.51.100.7"}).code == "AUTH_ERR"
    log = pam.read_log()
    assert any("authenticated %s from 198.51.100.7" % user in line for line in log)
    assert any("authentication of %s from 198.51.100.7 failed" % user in line for line in log)


def test_one_registry_cache_whatever_path_the_application_or_admin_has(stack):
    """pam_python takes sys.prefix from PATH: the cache must be named by the installation's
    site directories, so refresh-plugins rewrites the very file every login reads."""
    import subprocess
    import sys
    pam, user, opts = stack
    pam.service("svc", pam.line(opts))
    venv_bin = os.path.dirname(sys.executable)
    for path in ("/usr/bin:/bin", "%s:/usr/bin:/bin" % venv_bin, "/usr/local/bin:/usr/bin"):
        assert pam.run("svc", user, answers=[PASSWORD], env={"PATH": path}).code == "SUCCESS"
        proc = subprocess.run([os.path.join(venv_bin, "otpme-auth"), "refresh-plugins",
                               "--cache-dir", pam.cache_dir], env={"PATH": path},
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert len(os.listdir(pam.cache_dir)) == 1, os.listdir(pam.cache_dir)
        assert os.listdir(pam.cache_dir)[0] in proc.stdout


def test_a_gate_in_front_of_pam_unix(stack):
    """`gate`: our line only checks; pam_unix authenticates.  A gate never grants."""
    pam, user, opts = stack
    pam.service("svc", pam.line("gate", control="requisite"), "auth required pam_unix.so")
    assert pam.run("svc", user, answers=[PASSWORD]).code == "SUCCESS"
    assert pam.run("svc", user, answers=["wrong"]).code == "AUTH_ERR"
    assert any("gate: nothing against" in line for line in pam.read_log())
    # sufficient: a gate that answered SUCCESS would let anyone in without a password
    pam.service("suff", pam.line("gate", control="sufficient"), "auth required pam_deny.so")
    assert pam.run("suff", user, answers=[]).code == "AUTH_ERR"
    # a verifier on a gate line is a configuration error, not a silent grant
    pam.service("trip", pam.line("gate tripwire", control="requisite"), "auth required pam_unix.so")
    result = pam.run("trip", user, answers=[PASSWORD])
    assert result.code == "SERVICE_ERR"  # tripwire is a verifier: a gate refuses to run it


def test_setcred_and_session_accept_the_default_verifiers_options(stack):
    """sshd runs setcred and the session on the line it authenticated with (issue: a line
    with an option of the default verifier failed pam_setcred after a good login)."""
    pam, user, opts = stack
    pam.service("svc", pam.line("try_first_pass connect_timeout=5"),
                pam.line("connect_timeout=5", type="session"))
    result = pam.run("svc", user, "setcred", "open_session", "close_session")
    assert result.code == "SUCCESS", result.output + "\n".join(pam.read_log())
