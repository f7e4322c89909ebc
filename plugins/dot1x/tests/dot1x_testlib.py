"""Shared fixtures of the dot1x tests: a private "system" bus with NetworkManager's D-Bus mock.

Debian's python3-dbusmock runs under /usr/bin/python3 (dbus-python); the plugin
talks to it with jeepney through DBUS_SYSTEM_BUS_ADDRESS.
"""

import json
import os
import shutil
import subprocess
import time

import pytest
from jeepney import DBusAddress, new_method_call
from jeepney.io.blocking import open_dbus_connection
from jeepney.wrappers import unwrap_msg

from otpme_auth.testing.procs import stop_process

HERE = os.path.dirname(os.path.abspath(__file__))
NM_BUS = "org.freedesktop.NetworkManager"
NM_PATH = "/org/freedesktop/NetworkManager"
MOCK_IFACE = "org.freedesktop.DBus.Mock"
IDENTITY = "alice"
PASSWORD = "Dot1x-pw-7f3a9c"

DOT1X = {"eap": ("as", ["ttls"]), "phase2-auth": ("s", "pap"),
         "ca-cert": ("ay", b"file:///etc/otpme/ssl/ca.pem\0"),
         "domain-suffix-match": ("s", "site.realm.example"),
         "anonymous-identity": ("s", "anonymous@realm.example"),
         "identity": ("s", "user"), "password-flags": ("u", 2)}


def connection(name="dot1x-lan", dot1x=DOT1X):
    settings = {"connection": {"id": ("s", name), "type": ("s", "802-3-ethernet"),
                               "interface-name": ("s", "eth0")}}
    if dot1x is not None:
        settings["802-1x"] = dict(dot1x)
    return settings


class MockNM:
    def __init__(self, address, process, bus_process):
        self.address = address
        self.process = process
        self.bus_process = bus_process
        self.conn = open_dbus_connection(address)

    def call(self, path, iface, method, signature=None, body=()):
        addr = DBusAddress(path, NM_BUS, iface)
        return unwrap_msg(self.conn.send_and_get_reply(new_method_call(addr, method, signature, body),
                                                       timeout=10))

    def add_connection(self, settings):
        return self.call(NM_PATH + "/Settings", "org.freedesktop.NetworkManager.Settings",
                         "AddConnection", "a{sa{sv}}", (settings,))[0]

    def stats(self):
        return self.call(NM_PATH + "/AgentManager", "org.freedesktop.NetworkManager.AgentManager",
                         "Stats")[0]


def start_bus(tmp_path):
    if not shutil.which("dbus-daemon"):
        pytest.skip("dbus-daemon is not installed")
    sock = tmp_path / "system_bus"
    bus = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--nopidfile",
                            "--address=unix:path=%s" % sock], stdout=subprocess.DEVNULL)
    for _ in range(100):
        if sock.exists():
            break
        time.sleep(0.05)
    return bus, "unix:path=%s" % sock


@pytest.fixture
def system_bus(tmp_path, monkeypatch):
    """A private bus in the role of the system bus, with nothing on it (NM not running)."""
    bus, address = start_bus(tmp_path)
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", address)
    yield address
    stop_process(bus)


def start_mock(address, tmp_path, params):
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=address, DOT1X_MOCK_PARAMS=json.dumps(params))
    log = tmp_path / "dbusmock.log"
    proc = subprocess.Popen(["/usr/bin/python3", "-m", "dbusmock", "--system", "-t",
                             os.path.join(HERE, "nm_template.py"), "-l", str(log)], env=env,
                            stdout=subprocess.DEVNULL)
    conn = open_dbus_connection(address)
    try:
        from jeepney.bus_messages import message_bus
        for _ in range(200):
            if unwrap_msg(conn.send_and_get_reply(message_bus.NameHasOwner(NM_BUS)))[0]:
                break
            time.sleep(0.05)
        else:
            proc.kill()
            raise RuntimeError("the NetworkManager mock did not start")
    finally:
        conn.close()
    return proc


@pytest.fixture
def mock_nm(system_bus, tmp_path):
    """Start NetworkManager's mock on the private bus: ``mock_nm(identity=, password=, hang=)``."""
    made = []

    def start(identity=IDENTITY, password=PASSWORD, hang=False, connections=(connection(),),
              up_file=""):
        proc = start_mock(system_bus, tmp_path, {"identity": identity, "password": password,
                                                 "hang": hang, "up_file": str(up_file)})
        nm = MockNM(system_bus, proc, None)
        made.append(nm)
        nm.call(NM_PATH, MOCK_IFACE, "AddEthernetDevice", "ssi", ("mock_Ethernet1", "eth0", 30))
        for settings in connections:
            nm.add_connection(settings)
        return nm
    yield start
    for nm in made:
        nm.conn.close()
        stop_process(nm.process)


class Port:
    """A locked switch port in front of the realm's server: a TCP relay on loopback that
    closes every connection until ``up_file`` exists (the mock writes it when the
    802.1x exchange succeeded)."""

    def __init__(self, target, up_file):
        import socket
        import threading
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.up_file = up_file
        self.refused = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = "127.0.0.1:%d" % self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        import socket
        import threading
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            if not os.path.exists(self.up_file):
                self.refused += 1
                conn.close()
                continue
            upstream = socket.create_connection(self.target)
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(2)
                except OSError:
                    pass

    def close(self):
        self.listener.close()
