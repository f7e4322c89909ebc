"""The dot1x plugin's NetworkManager code against a real NetworkManager (issue 14, "Real
components"), the whole 802.1x chain real:

dot1x's ``bring_up`` (secret agent over jeepney) -> NetworkManager 1.42 -> wpa_supplicant
-> EAPOL over a veth pair -> hostapd (driver=wired, the switch port) -> FreeRADIUS written by
``otpme-auth-server radius-config`` -> rlm_rest -> the realm's server.

Everything runs in a network namespace of its own; NetworkManager and a private udevd
(NetworkManager manages only devices udev has initialised) in a private mount namespace
(tmpfs over /run/NetworkManager, /run/udev, /var/lib/NetworkManager), on a private
dbus-daemon in the role of the system bus. The host's network, buses and files are not
touched; every process is stopped by pid.
"""

import os
import re
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

from otpme_auth.context import Secret
from otpme_auth.testing import skip_or_fail
from otpme_auth.testing.procs import free_port, stop_process

PW = "correct horse 42"
BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={bus}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="root"/><allow own="*"/><allow send_destination="*"/><allow receive_sender="*"/>
  </policy>
</busconfig>
"""


def _need():
    for tool in ("NetworkManager", "wpa_supplicant", "hostapd", "freeradius", "dbus-daemon",
                 "udevadm", "ip", "unshare"):
        if shutil.which(tool) is None and not os.path.exists("/usr/sbin/" + tool):
            skip_or_fail(f"{tool} not found (Debian packages network-manager wpasupplicant "
                         "hostapd freeradius freeradius-rest udev)")
    if not os.path.exists("/lib/systemd/systemd-udevd"):
        skip_or_fail("systemd-udevd not found (Debian package udev)")
    if os.geteuid() != 0:
        skip_or_fail("network namespaces need root")


class Lab:
    def __init__(self, work):
        self.work = str(work)
        self.ns = "otpmenm%d" % os.getpid()
        self.bus_path = os.path.join(self.work, "bus")
        self.env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS="unix:path=" + self.bus_path)
        self.procs = []
        self.logs = {}

    def sh(self, *cmd, ns=True, check=True):
        argv = (["ip", "netns", "exec", self.ns] if ns else []) + list(cmd)
        return subprocess.run(argv, capture_output=True, text=True, env=self.env, check=check,
                              timeout=60)

    def spawn(self, name, *cmd):
        log = open(os.path.join(self.work, name + ".log"), "w")
        self.logs[name] = log.name
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns] + list(cmd), stdout=log,
                                stderr=subprocess.STDOUT, env=self.env)
        self.procs.append(proc)
        return proc

    def log(self, name):
        with open(self.logs[name], errors="replace") as fh:
            return fh.read()

    def wait_log(self, name, text, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log(name):
                return
            time.sleep(0.1)
        raise AssertionError(f"{name}: no {text!r} in:\n" + self.log(name)[-3000:])

    def nmcli(self, *args):
        return subprocess.run(["nmcli", *args], capture_output=True, text=True, env=self.env,
                              timeout=30)

    def stop(self):
        for proc in reversed(self.procs):
            stop_process(proc)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)


@pytest.fixture
def lab(tmp_path):
    _need()
    lab = Lab(tmp_path)
    try:
        yield lab
    finally:
        lab.stop()


@pytest.mark.parametrize("profile_identity", [
    "alice",
    # Seed 001's profile has a placeholder identity ("user"). The real NetworkManager
    # sends the profile's identity and ignores one in the agent's GetSecrets reply
    # (identity is not a secret): the plugin sets it in memory (Update2) before activating.
    "user",
])
def test_real_networkmanager_brings_the_port_up_with_the_plugins_agent(lab, realm, tmp_path,
                                                                       profile_identity):
    from otpme_auth_dot1x.nm import Dot1xError, bring_up

    # The realm, its RADIUS client (the switch: hostapd on the namespace's loopback), alice.
    realm.add_user("alice", PW)
    out = realm.admin("client", "add", "switch1", "--address", "127.0.0.1")
    shared = re.search(r"shared secret .*: ([0-9a-f]{32})$", out.strip()).group(1)
    radius_port = free_port()
    raddb = str(tmp_path / "raddb")
    for d in ("run", "log"):
        os.makedirs(tmp_path / d, exist_ok=True)
    realm._run(os.path.join(os.path.dirname(sys.executable), "otpme-auth-server"), "radius-config",
               "--dir", realm.server_dir, "--out", raddb, "--user", "",
               "--listen", f"127.0.0.1:{radius_port}", "--run-dir", str(tmp_path / "run"),
               "--log-dir", str(tmp_path / "log"), "--reject-delay", "0")

    subprocess.run(["ip", "netns", "add", lab.ns], check=True, capture_output=True)
    lab.sh("ip", "link", "set", "lo", "up")
    lab.sh("ip", "link", "add", "veth0", "type", "veth", "peer", "name", "veth1")
    lab.sh("ip", "link", "set", "veth1", "up")

    server = lab.spawn("server", os.path.join(os.path.dirname(sys.executable), "otpme-auth-server"),
                       "run", "--dir", realm.server_dir)
    lab.spawn("freeradius", "freeradius", "-f", "-l", "stdout", "-d", raddb)
    lab.wait_log("freeradius", "Ready to process requests")
    lab.wait_log("server", "serving realm")
    assert server.poll() is None
    hostapd_conf = tmp_path / "hostapd.conf"
    hostapd_conf.write_text(textwrap.dedent(f"""\
        interface=veth1
        driver=wired
        logger_stdout=-1
        logger_stdout_level=2
        ieee8021x=1
        eap_reauth_period=0
        use_pae_group_addr=1
        auth_server_addr=127.0.0.1
        auth_server_port={radius_port}
        auth_server_shared_secret={shared}
        own_ip_addr=127.0.0.1
        """))
    os.chmod(hostapd_conf, 0o600)
    lab.spawn("hostapd", "hostapd", str(hostapd_conf))
    lab.wait_log("hostapd", "AP-ENABLED")

    # The system bus, a private udevd, NetworkManager (own mount namespace), wpa_supplicant.
    (tmp_path / "bus.conf").write_text(BUS_CONF.format(bus=lab.bus_path))
    lab.spawn("dbus", "dbus-daemon", "--nofork", "--config-file=%s" % (tmp_path / "bus.conf"))
    deadline = time.monotonic() + 10
    while not os.path.exists(lab.bus_path) and time.monotonic() < deadline:
        time.sleep(0.05)
    # [device] managed=1 outranks udev's rule 85-nm-unmanaged, which marks veth devices
    # unmanaged (a real NIC is managed), whenever udev gets to the device; no
    # "Wired connection 1" of NetworkManager's own may start on it.
    (tmp_path / "nm.conf").write_text(f"[main]\nplugins=keyfile\ndhcp=internal\nno-auto-default=*\n"
                                      f"[keyfile]\npath={tmp_path / 'connections'}\n"
                                      f"[device-veth0]\nmatch-device=interface-name:veth0\n"
                                      f"managed=1\n")
    os.makedirs(tmp_path / "connections", mode=0o700, exist_ok=True)
    (tmp_path / "nm.sh").write_text(textwrap.dedent(f"""\
        set -e
        for d in /run/NetworkManager /run/udev /var/lib/NetworkManager; do
            mkdir -p $d; mount -t tmpfs tmpfs $d
        done
        /lib/systemd/systemd-udevd &
        UDEVD=$!
        trap 'kill $UDEVD' EXIT TERM
        # A trigger sent before udevd listens is lost, and NetworkManager then never gets
        # udev's data: every device stays unmanaged. On a loaded machine udevd starts slowly.
        for i in $(seq 300); do udevadm control --ping -t 1 2>/dev/null && break; sleep 0.1; done
        udevadm trigger --action=add --subsystem-match=net
        udevadm settle -t 60 || true
        /usr/sbin/NetworkManager --no-daemon --debug --config={tmp_path / 'nm.conf'} \\
            --state-file={tmp_path / 'nm.state'} --pid-file={tmp_path / 'nm.pid'} &
        NM=$!
        trap 'kill $NM; kill $UDEVD' EXIT TERM
        wait $NM
        """))
    lab.spawn("nm", "unshare", "--mount", "--propagation", "private", "sh", str(tmp_path / "nm.sh"))
    lab.spawn("wpa", "wpa_supplicant", "-u", "-s", "-O", str(tmp_path / "wpa"))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if "veth0" in lab.nmcli("-t", "device", "status").stdout:
            break
        time.sleep(0.2)
    # The same at runtime, for the moment before NetworkManager has read udev's data
    # ("strictly unmanaged" until then; on a loaded machine longer than `udevadm settle -t 5`).
    deadline = time.monotonic() + 60
    while True:
        managed = lab.nmcli("device", "set", "veth0", "managed", "yes")
        if managed.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert managed.returncode == 0, managed.stderr + lab.log("nm")[-2000:]
    # "managed yes" sets the user's flag; the device stays (strictly) unmanaged until
    # NetworkManager has udev's data for it, and an activation before then is refused.
    while time.monotonic() < deadline:
        states = lab.nmcli("-t", "-f", "DEVICE,STATE", "device", "status").stdout.splitlines()
        if "veth0:disconnected" in states:
            break
        time.sleep(0.5)
    assert "veth0:disconnected" in states, states + [lab.log("nm")[-2000:]]
    for c in lab.nmcli("-t", "-f", "NAME", "connection", "show").stdout.split():
        lab.nmcli("connection", "delete", c)
    # Seed 001's connection: placeholders, password-flags 2 (not saved).
    add = lab.nmcli("connection", "add", "type", "ethernet", "con-name", "dot1x-lan",
                    "ifname", "veth0", "autoconnect", "no",
                    "802-1x.eap", "ttls", "802-1x.phase2-auth", "pap",
                    "802-1x.ca-cert", os.path.join(raddb, "certs", "ca.pem"),
                    "802-1x.domain-suffix-match", "berlin.example.org",
                    "802-1x.anonymous-identity", "anonymous@example.org",
                    "802-1x.identity", profile_identity, "802-1x.password-flags", "2",
                    "ipv4.method", "link-local", "ipv6.method", "disabled")
    assert add.returncode == 0, add.stderr

    old = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
    os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = lab.env["DBUS_SYSTEM_BUS_ADDRESS"]
    try:
        if profile_identity == "alice":
            # A refused credential: NetworkManager gives up, the plugin says so.
            with pytest.raises(Dot1xError):
                bring_up("dot1x-lan", "alice", Secret("wrong"), 40)
        # The right one: the port comes up, the realm's server saw alice's login.
        bring_up("dot1x-lan", "alice", Secret(PW), 40)
    finally:
        if old is None:
            os.environ.pop("DBUS_SYSTEM_BUS_ADDRESS", None)
        else:
            os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = old
    status = lab.nmcli("-t", "-f", "DEVICE,STATE,CONNECTION", "device", "status").stdout
    assert "veth0:connected:dot1x-lan" in status, status
    text = lab.log("server")
    assert "login ok user=alice host=radius:switch1" in text
    # The user's name went to NetworkManager's copy only: the profile on disk is unchanged.
    profile = "".join(p.read_text() for p in (tmp_path / "connections").iterdir())
    assert "identity=%s\n" % profile_identity in profile, profile
    assert PW not in profile
    assert "login refused user=alice host=radius:switch1" in text or profile_identity != "alice"
    # The secret is in no profile file and no log.
    for root, _, files in os.walk(str(tmp_path)):
        for f in files:
            p = os.path.join(root, f)
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as fh:
                    assert PW.encode() not in fh.read(), p
