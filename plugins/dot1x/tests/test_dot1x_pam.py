"""802.1x during a real login: real libpam (pam_wrapper + pam_python + pamtester), the
realm's real server behind a "locked port" (a relay that refuses connections until the
802.1x exchange succeeded), NetworkManager's D-Bus mock as the authenticator.

Full PAM sequences: authenticate, setcred, acct_mgmt, open_session, close_session.
"""

import os
import threading

import pytest
from dot1x_testlib import Port, mock_nm, system_bus  # noqa: F401

PW = "Dot1x-pw-7f3a9c"
SEQUENCE = ("authenticate", "setcred", "acct_mgmt", "open_session", "close_session")


class Site:
    def __init__(self, realm, pam, system_user, tmp_path, extra=""):
        self.realm, self.pam = realm, pam
        self.user = system_user()
        realm.add_user(self.user, PW, offline=True)
        jotp = realm.add_host("h1", tokens=["%s/pass" % self.user])
        realm.start()
        self.up_file = str(tmp_path / "port-is-up")
        self.port = Port(realm.server, self.up_file)
        self.conf = realm.join("h1", jotp)
        with open(self.conf) as fh:   # the host reaches the server through the port
            text = fh.read().replace(realm.server, self.port.address)
        with open(self.conf, "w") as fh:
            fh.write(text)
        self.cache_dir = os.path.join(pam.dir, "offline")
        self.base = ("try_first_pass host_config=%s connect_timeout=1 cache_login_tokens "
                     "offline_cache_dir=%s offline_key_func=Argon2_i;min_mem:8,max_mem:8,"
                     "iterations:1,threads:1 %s" % (self.conf, self.cache_dir, extra))

    def line(self, dot1x):
        self.pam.service("login", self.pam.line(self.base + " " + dot1x))

    def run(self, *functions):
        mark = len(self.pam.read_log())
        seen = []
        stop = threading.Event()

        def watch():   # every process's argv while the login runs
            while not stop.is_set():
                for pid in os.listdir("/proc"):
                    if pid.isdigit():
                        try:
                            with open("/proc/%s/cmdline" % pid, "rb") as fh:
                                seen.append(fh.read())
                        except OSError:
                            pass
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            result = self.pam.run("login", self.user, *functions, answers=[PW])
        finally:
            stop.set()
            watcher.join()
        assert seen and not any(PW.encode() in argv for argv in seen), "the secret was on an argv"
        result.new = result.log[mark:]
        assert not any(PW in line for line in self.pam.read_log()), "the secret was logged"
        return result

    def close(self):
        self.port.close()


@pytest.fixture
def site(realm, pam_harness, system_user, tmp_path):
    s = Site(realm, pam_harness, system_user, tmp_path)
    yield s
    s.close()


def test_a_locked_port_comes_up_with_the_typed_password_then_online(site, mock_nm, tmp_path):
    nm = mock_nm(identity=site.user, password=PW, up_file=site.up_file)
    site.line("do_dot1x=force dot1x_timeout=10")
    result = site.run(*SEQUENCE)
    result.assert_code("SUCCESS")
    assert nm.stats()["accepted"] == "1"
    assert site.port.refused == 0, "online waited for the link instead of timing out on it"
    assert any("802.1x: connection 'dot1x-lan' is up" in line for line in result.new), result.new
    assert any("(by online)" in line for line in result.new), result.new
    mock_log = (tmp_path / "dbusmock.log").read_text()
    assert PW not in mock_log


def _cache_first(site):
    """One online login without 802.1x (port open) fills the offline cache."""
    with open(site.up_file, "w") as fh:
        fh.write("up\n")
    site.line("")
    site.run().assert_code("SUCCESS")
    os.unlink(site.up_file)


@pytest.mark.parametrize("fault", ["refused", "timeout"])
def test_a_failed_8021x_goes_on_as_offline(site, mock_nm, fault):
    _cache_first(site)
    if fault == "refused":
        nm = mock_nm(identity=site.user, password="not what the user types", up_file=site.up_file)
    else:
        nm = mock_nm(hang=True, up_file=site.up_file)
    site.line("do_dot1x=force dot1x_timeout=1 show_errors")
    result = site.run(*SEQUENCE)
    result.assert_code("SUCCESS")
    want = "credential was refused" if fault == "refused" else "did not complete within 1s"
    assert any("802.1x failed" in line and want in line for line in result.new), result.new
    assert "Network login (802.1x) failed" in result.output, result.output
    if fault == "refused":
        assert nm.stats()["refused"] == "1"


def test_without_networkmanager_a_clear_message_and_offline(site, system_bus):
    _cache_first(site)
    site.line("do_dot1x=force dot1x_timeout=1 show_errors")
    result = site.run()
    result.assert_code("SUCCESS")
    assert any("NetworkManager is not running" in line for line in result.new), result.new


def test_a_wrong_password_is_still_refused(site, mock_nm):
    """The port stays shut, the cache does not know it: refused, no offline success."""
    _cache_first(site)
    mock_nm(identity=site.user, password=PW, up_file=site.up_file)
    site.line("do_dot1x=force dot1x_timeout=2")
    mark = len(site.pam.read_log())
    result = site.pam.run("login", site.user, answers=["wrong password"])
    assert result.code == "AUTH_ERR", result.log[mark:]
