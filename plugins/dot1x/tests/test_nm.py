"""dot1x's NetworkManager client against NetworkManager's D-Bus mock on a private bus."""

import pytest
from dot1x_testlib import DOT1X, IDENTITY, PASSWORD, connection, mock_nm, system_bus  # noqa: F401

from otpme_auth import Secret
from otpme_auth_dot1x.nm import Dot1xError, Refused, TimedOut, bring_up


def up(password=PASSWORD, name="dot1x-lan", timeout=5):
    return bring_up(name, IDENTITY, Secret(password), timeout)


def test_brings_the_connection_up_through_the_secret_agent(mock_nm):
    nm = mock_nm()
    up()
    stats = nm.stats()
    assert stats["asked"] == "1" and stats["accepted"] == "1"
    assert stats["agents"] == "0", "the agent unregisters after the activation"


def test_a_refused_secret_is_an_error(mock_nm):
    nm = mock_nm()
    with pytest.raises(Refused, match="refused"):
        up(password="wrong")
    assert nm.stats()["refused"] == "1"


def test_timeout(mock_nm):
    mock_nm(hang=True)
    with pytest.raises(TimedOut, match="within 1s"):
        up(timeout=1)


def test_networkmanager_not_running(system_bus):
    with pytest.raises(Dot1xError, match="NetworkManager is not running"):
        up()


def test_no_system_bus(monkeypatch, tmp_path):
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=%s" % (tmp_path / "none"))
    with pytest.raises(Dot1xError, match="system D-Bus is not reachable"):
        up()


def test_no_such_connection(mock_nm):
    mock_nm()
    with pytest.raises(Dot1xError, match="no connection named 'office'"):
        up(name="office")


def test_no_8021x_section(mock_nm):
    mock_nm(connections=[connection("plain", dot1x=None)])
    with pytest.raises(Dot1xError, match="no 802-1x section"):
        up(name="plain")


@pytest.mark.parametrize("missing", ["ca-cert", "domain-suffix-match"])
def test_refuses_an_unauthenticated_radius_server(mock_nm, missing):
    settings = {k: v for k, v in DOT1X.items() if k != missing}
    nm = mock_nm(connections=[connection("open", dot1x=settings)])
    with pytest.raises(Dot1xError, match="not authenticated"):
        up(name="open")
    assert nm.stats()["asked"] == "0", "no credential was offered"


def test_only_networkmanager_gets_the_secret(mock_nm, system_bus):
    """Anyone on the system bus can call the agent: a stranger's GetSecrets is refused."""
    import threading

    from jeepney import DBusAddress, new_method_call
    from jeepney.io.blocking import open_dbus_connection

    from otpme_auth_dot1x.nm import AGENT_PATH, Activation
    mock_nm()
    act = Activation("dot1x-lan", IDENTITY, Secret(PASSWORD), 5)
    act.open()
    act.conn_path = act.find() and act.conn_path
    pump = threading.Thread(target=act._pump, args=(3,))
    pump.start()
    stranger = open_dbus_connection(system_bus)
    try:
        agent = DBusAddress(AGENT_PATH, act.conn.unique_name,
                            "org.freedesktop.NetworkManager.SecretAgent")
        reply = stranger.send_and_get_reply(new_method_call(
            agent, "GetSecrets", "a{sa{sv}}osasu", ({}, act.conn_path, "802-1x", [], 1)),
            timeout=5)
    finally:
        pump.join()
        stranger.close()
        act.close()
    assert reply.header.fields[4] == "org.freedesktop.DBus.Error.AccessDenied"   # error_name
    assert PASSWORD not in repr(reply.body)
    assert act.secrets_asked == 0
