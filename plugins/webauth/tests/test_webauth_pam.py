"""webauth end to end: real libpam (pam_wrapper + pam_python + pamtester), a real MIT KDC,
a real remctld, and a webkdc-validate command that answers as a user-information service.

The realm (``webauth_realm.py``) is made once per module (about 0.2 s); every test gets its
own remctld log.  KRB5_CONFIG reaches libkrb5 inside pam_python through pamtester's
environment, as it would in any PAM application.
"""

import json
import os
import sys
import threading

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from webauth_realm import REALM, free_port, realm_fixture  # noqa: E402

pytestmark = pytest.mark.pam
RIGHT = "314159"
CALLS = ("authenticate", "setcred", "acct_mgmt", "open_session", "close_session")


@pytest.fixture(scope="module")
def realm(tmp_path_factory):
    r = realm_fixture(tmp_path_factory)
    r.service_log = os.path.join(r.dir, "service.log")
    r.port = r.remctld(r.service_log, service_env={"USERINFO_SLOW": "4"})
    yield r
    r.stop()


@pytest.fixture
def login(pam_harness, realm):
    """login(user, code, options=..., calls=CALLS) through real libpam."""
    def run(user, code, options=None, calls=("authenticate",), krb5=None, port=None, extra_lines=(),
            answers=None):
        if krb5 is not None:
            path = os.path.join(pam_harness.dir, "krb5.conf")
            with open(realm.krb5_conf) as fh:
                base = fh.read()
            with open(path, "w") as fh:
                fh.write(base + krb5)
        else:
            path = realm.krb5_conf
        if options is None:
            options = "command=webauth host=localhost port=%d keytab=%s" % (
                port or realm.port, realm.client_keytab)
        pam_harness.service("wa", *extra_lines, pam_harness.line("webauth debug " + options),
                            "account required pam_permit.so",
                            pam_harness.line("webauth debug " + options, type="account",
                                             control="optional"),
                            pam_harness.line("webauth debug " + options, type="session"))
        result = pam_harness.run("wa", user, *calls, answers=answers or [code],
                                 env={"KRB5_CONFIG": path})
        result.log = pam_harness.read_log()
        return result
    return run


def service_calls(realm, user):
    with open(realm.service_log) as fh:
        return [json.loads(line) for line in fh if json.loads(line)["argv"][2:3] == [user]]


def no_code_in(result, code):
    assert not any(code in line for line in result.log), "the code is in the log"


def test_right_code_and_every_other_pam_call(login, realm):
    result = login("alice", RIGHT, calls=CALLS)
    assert result.ok, result.output + "\n".join(result.log)
    assert "One-time password: " in result.output
    for what in ("setcred (establish)", "open_session", "close_session"):
        assert any("webauth only provides authentication (seed 002): %s does nothing" % what in line
                   for line in result.log), (what, result.log)
    no_code_in(result, RIGHT)
    call = service_calls(realm, "alice")[-1]
    # the code went to the service on stdin, never on a command line
    assert call["argv"][1:] == ["webkdc-validate", "alice", "127.0.0.1"]
    assert call["stdin_len"] == len(RIGHT)
    assert RIGHT not in " ".join(call["cmdline"])


def test_rhost_is_sent_as_the_ip(pam_harness, login, realm):
    login("alice", RIGHT)  # writes the service file
    result = pam_harness.run("wa", "alice", answers=[RIGHT], env={"KRB5_CONFIG": realm.krb5_conf},
                             items={"rhost": "192.0.2.7"})
    assert result.ok
    assert service_calls(realm, "alice")[-1]["argv"][3] == "192.0.2.7"


def test_wrong_code_is_denied(login):
    result = login("alice", "271828")
    assert result.code == "AUTH_ERR"
    assert any("code refused by the user-information service" in line for line in result.log)
    no_code_in(result, "271828")


def test_service_error_is_unavailable(login):
    result = login("broken", RIGHT)
    assert result.code == "AUTHINFO_UNAVAIL", result.log
    assert any("failed (exit status 1): OTP database unreachable" in line for line in result.log)


def test_a_service_error_that_repeats_the_code_does_not_log_it(login):
    result = login("leaky", "424242")
    assert result.code == "AUTHINFO_UNAVAIL"
    assert any("failed (exit status 1): code" in line for line in result.log), result.log
    no_code_in(result, "424242")


def test_forty_parallel_logins_each_get_their_own_answer(login, pam_harness, realm):
    from concurrent.futures import ThreadPoolExecutor
    login("alice", RIGHT)  # writes the service file
    cases = [("alice", RIGHT, "SUCCESS"), ("bob", "000000", "AUTH_ERR"),
             ("broken", RIGHT, "AUTHINFO_UNAVAIL"), ("carol", RIGHT, "SUCCESS")] * 10

    def one(case):
        user, code, _ = case
        return pam_harness.run("wa", user, answers=[code], env={"KRB5_CONFIG": realm.krb5_conf},
                               timeout=120).code
    with ThreadPoolExecutor(40) as pool:
        codes = list(pool.map(one, cases))
    assert codes == [want for _, _, want in cases]


def test_slow_service_past_timeout_is_unavailable(login, realm):
    options = "command=webauth host=localhost port=%d keytab=%s timeout=1" % (
        realm.port, realm.client_keytab)
    result = login("slow", RIGHT, options=options)
    assert result.code == "AUTHINFO_UNAVAIL", result.log
    assert any("did not answer in 1s" in line for line in result.log)


def test_service_down_is_unavailable(login):
    result = login("alice", RIGHT, port=free_port())
    assert result.code == "AUTHINFO_UNAVAIL"
    assert any("cannot connect to localhost" in line for line in result.log), result.log


def test_wrong_principal_is_unavailable(login, realm):
    options = "command=webauth host=localhost port=%d keytab=%s principal=host/elsewhere@%s" % (
        realm.port, realm.client_keytab, REALM)
    result = login("alice", RIGHT, options=options)
    assert result.code == "AUTHINFO_UNAVAIL"
    assert any("Kerberos authentication to the server failed" in line for line in result.log)


def test_missing_keytab_is_unavailable(login, realm, tmp_path):
    options = "command=webauth host=localhost port=%d keytab=%s" % (realm.port, tmp_path / "none")
    result = login("alice", RIGHT, options=options)
    assert result.code == "AUTHINFO_UNAVAIL"
    assert any("cannot use the keytab %s" % (tmp_path / "none") in line for line in result.log)


def test_wrong_command_prefix_is_unavailable(login, realm):
    options = "command=webkdc host=localhost port=%d keytab=%s" % (realm.port, realm.client_keytab)
    result = login("alice", RIGHT, options=options)
    assert result.code == "AUTHINFO_UNAVAIL"
    assert any("the server refused the command: unknown command" in line for line in result.log)


@pytest.mark.parametrize("user", ["garbage", "evil", "nosuccess"])
def test_unparseable_reply_fails_closed(login, user):
    result = login(user, RIGHT)
    assert result.code == "AUTH_ERR"
    assert any("refusing %s: the reply of localhost:" % user in line and "does not parse" in line
               for line in result.log), result.log


def test_options_from_krb5_conf_only(login, realm):
    krb5 = ("[appdefaults]\n pam-webauth-otp = {\n  command = webauth\n  host = localhost\n"
            "  port = %d\n  keytab = %s\n }\n" % (realm.port, realm.client_keytab))
    assert login("alice", RIGHT, options="", krb5=krb5).ok
    assert login("alice", "000000", options="", krb5=krb5).code == "AUTH_ERR"
    top = ("[appdefaults]\n command = webauth\n host = localhost\n port = %d\n keytab = %s\n"
           % (realm.port, realm.client_keytab))
    result = login("alice", RIGHT, options="", krb5=top)
    assert result.ok
    assert any("port=%d (" % realm.port in line and "krb5.conf line " in line for line in result.log), \
        result.log


def test_the_pam_line_overrides_krb5_conf(login, realm):
    krb5 = ("[appdefaults]\n pam-webauth-otp = {\n  command = wrong\n  host = localhost\n"
            "  port = %d\n  keytab = /nonexistent\n }\n" % free_port())
    options = "command=webauth port=%d keytab=%s" % (realm.port, realm.client_keytab)
    result = login("alice", RIGHT, options=options, krb5=krb5)
    assert result.ok, result.log
    assert any("host=localhost (" in line and "line" in line for line in result.log)
    assert any("port=%d (the PAM line)" % realm.port in line for line in result.log)


def test_a_bad_value_in_krb5_conf_is_a_clear_error(login):
    krb5 = "[appdefaults]\n pam-webauth-otp = {\n  command = webauth\n  host = localhost\n  timeout = soon\n }\n"
    result = login("alice", RIGHT, options="", krb5=krb5)
    assert result.code == "SERVICE_ERR"
    assert any("bad value for timeout in krb5.conf [appdefaults]" in line and "got 'soon'" in line
               for line in result.log), result.log
    assert "One-time password" not in result.output


def test_a_broken_krb5_conf_is_a_clear_error(login):
    result = login("alice", RIGHT, options="", krb5="[appdefaults]\n pam-webauth-otp = {\n this is not\n }\n")
    assert result.code == "SERVICE_ERR"
    assert any("krb5.conf:" in line and "not 'name = value'" in line for line in result.log)


def test_required_options_missing(login):
    result = login("alice", RIGHT, options="host=localhost")
    assert result.code == "SERVICE_ERR"
    assert any("webauth needs command=" in line for line in result.log)


def test_stacked_after_pam_unix(login, realm, system_user):
    name = system_user(password="unix pw")
    unix = "auth required pam_unix.so"
    ok = login(name, None, answers=["unix pw", RIGHT], extra_lines=[unix], calls=CALLS)
    assert ok.ok, ok.output + "\n".join(ok.log)
    assert login(name, None, answers=["unix pw", "000000"], extra_lines=[unix]).code == "AUTH_ERR"
    assert login(name, None, answers=["bad pw", RIGHT], extra_lines=[unix]).code == "AUTH_ERR"


def test_default_port_falls_back_to_the_legacy_port(login, realm):
    # nothing on 4373 here (refused), remctld on 4444: remctl's default order
    import socket
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", 4373)) == 0:
            pytest.fail("something listens on 127.0.0.1:4373; this test needs it free")
    realm.remctld(realm.service_log, port=4444)
    options = "command=webauth host=localhost keytab=%s" % realm.client_keytab
    result = login("alice", RIGHT, options=options)
    assert result.ok, result.log


def test_the_code_is_in_no_argv_while_the_login_runs(login, realm):
    code = "314159"
    seen = []
    stop = threading.Event()

    def scan():
        while not stop.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    with open("/proc/%s/cmdline" % pid, "rb") as fh:
                        cmdline = fh.read()
                except OSError:
                    continue
                if b"webkdc-validate" in cmdline or b"pamtester" in cmdline:
                    seen.append(cmdline)
                    assert code.encode() not in cmdline, cmdline
    thread = threading.Thread(target=scan, daemon=True)
    thread.start()
    try:
        result = login("hold", code)
    finally:
        stop.set()
        thread.join()
    assert result.ok, result.log
    assert any(b"webkdc-validate\0hold" in c for c in seen), "the scan never saw the service run"
    assert not any(code.encode() in c for c in seen)
