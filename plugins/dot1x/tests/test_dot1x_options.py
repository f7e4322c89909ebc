"""dot1x's options (both spellings of the token type) and the gateway probe."""

import shutil
import socket
import subprocess
import sys

import pytest

import otpme_auth_dot1x as dot1x
from otpme_auth import ConfigError
from otpme_auth.testing import options_for
from otpme_auth_dot1x import probe


def opts(args):
    return options_for(dot1x, args, name="dot1x")


def test_defaults_are_the_seeds():
    o = opts("do_dot1x=auto")
    assert o.dot1x_connection == "dot1x-lan"
    assert o.dot1x_timeout == 30
    assert dot1x.token_type(o) == "password"


@pytest.mark.parametrize("args", ["dot1x_token_type=password", "dot1x_token_types=password",
                                  "dot1x_token_type=password dot1x_token_types=password"])
def test_both_spellings(args):
    assert dot1x.token_type(opts("do_dot1x=force " + args)) == "password"


@pytest.mark.parametrize("args, match", [
    ("dot1x_token_type=password dot1x_token_types=yubikey_piv", "one token type"),
    ("dot1x_token_type=yubikey_piv", "not supported yet"),
    ("dot1x_token_types=hotp", "unknown type"),
])
def test_bad_token_types_fail_closed(args, match):
    with pytest.raises(ConfigError, match=match):
        dot1x.token_type(opts("do_dot1x=force " + args))


@pytest.mark.parametrize("value", ["sometimes", ""])
def test_do_dot1x_takes_auto_or_force(value):
    with pytest.raises(ConfigError):
        opts("do_dot1x=%s" % value)


def test_default_gateway_from_the_routing_table(tmp_path):
    routes = tmp_path / "route"
    routes.write_text(
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
        "eth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n")
    assert probe.default_gateway(str(routes)) == "192.168.0.1"
    routes.write_text(routes.read_text().splitlines()[0] + "\n")
    assert probe.default_gateway(str(routes)) is None
    assert probe.default_gateway(str(tmp_path / "missing")) is None


def test_icmp_echo_without_a_ping_process():
    """Loopback answers an echo (a datagram or raw ICMP socket, no subprocess); in a network
    namespace of our own whose only link is down, nothing answers."""
    assert probe.answers("127.0.0.1", timeout=2)
    if not shutil.which("unshare"):
        pytest.skip("unshare (util-linux) is not installed")
    code = ("import sys; from otpme_auth_dot1x import probe; "
            "sys.exit(0 if probe.answers('127.0.0.1', timeout=0.3, tries=1) else 3)")
    proc = subprocess.run(["unshare", "--net", sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 3, proc.stderr


@pytest.mark.parametrize("gateway, brings_up", [("127.0.0.1", False), (None, True)])
def test_auto_only_when_the_gateway_does_not_answer(run_login, make_plugin, monkeypatch, tmp_path,
                                                    gateway, brings_up):
    from otpme_auth import PASSWORD, allow
    monkeypatch.setattr(probe, "default_gateway", lambda: gateway)
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=%s" % (tmp_path / "no-bus"))
    verifier = make_plugin("v", otpme_auth_collect_credentials=lambda ctx: ctx.ask_authtok(),
                           otpme_auth_verify=lambda ctx: allow()
                           if ctx.credentials[PASSWORD].matches("pw") else None)
    result = run_login({"dot1x": dot1x, "v": verifier}, "v do_dot1x=auto", answers=["pw"])
    result.assert_code("SUCCESS")
    tried = any("system D-Bus is not reachable" in line for line in result.log)
    assert tried is brings_up, result.log


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_any_routing_table_text_gives_an_address_or_none(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("route") / "route"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    result = probe.default_gateway(str(path))
    assert result is None or socket.inet_aton(result)
