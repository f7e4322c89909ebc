"""python-dbusmock template: NetworkManager (the stock ``networkmanager`` template) plus
what an 802.1x login needs and the stock one lacks: the AgentManager, and an
ActivateConnection that asks the registered secret agent for the ``802-1x`` secrets
(as NetworkManager does) and plays the authenticator.

Parameters: ``identity`` and ``password`` the authenticator accepts; ``hang`` (bool):
the activation never completes (a timeout).  Runs in the mock process (Debian's
python3-dbusmock, dbus-python); never logs a secret.
"""

import json
import os

import dbus
import dbus.service
import dbusmock
from dbusmock.templates import networkmanager as nm

BUS_NAME = nm.BUS_NAME
MAIN_OBJ = nm.MAIN_OBJ
MAIN_IFACE = nm.MANAGER_IFACE
SYSTEM_BUS = nm.SYSTEM_BUS

AGENT_MANAGER = "/org/freedesktop/NetworkManager/AgentManager"
AGENT_IFACE = "org.freedesktop.NetworkManager.AgentManager"
AGENT_PATH = "/org/freedesktop/NetworkManager/SecretAgent"
# The stock template's Mock-interface methods (AddEthernetDevice...): dbusmock attaches the
# template module's D-Bus methods to the main object.
for _name, _value in vars(nm).items():
    if getattr(_value, "_dbus_is_method", False):
        globals()[_name] = _value

STATE = {"agents": {}, "params": {}, "asked": 0, "accepted": 0, "refused": 0}


class AgentManager(dbus.service.Object):
    # dbusmock's method lookup (patched into dbus-python) looks here first
    methods = {}
    interface = AGENT_IFACE

    @dbus.service.method(AGENT_IFACE, in_signature="s", out_signature="", sender_keyword="sender")
    def Register(self, identifier, sender=None):
        STATE["agents"][sender] = str(identifier)

    @dbus.service.method(AGENT_IFACE, in_signature="", out_signature="", sender_keyword="sender")
    def Unregister(self, sender=None):
        STATE["agents"].pop(sender, None)

    @dbus.service.method(AGENT_IFACE, in_signature="", out_signature="a{ss}")
    def Stats(self):
        """For the test: how often secrets were asked, accepted, refused; agents left."""
        return {"asked": str(STATE["asked"]), "accepted": str(STATE["accepted"]),
                "refused": str(STATE["refused"]), "agents": str(len(STATE["agents"]))}


def activate(self, conn, dev, ap):
    params = STATE["params"]
    bus = self.connection
    # (a call to our own bus name here would deadlock the mock: the agent gets an empty map)
    settings = dbus.Dictionary({}, signature="sa{sv}")
    ok = False
    if not params.get("hang"):
        for sender in list(STATE["agents"]):
            STATE["asked"] += 1
            agent = dbus.Interface(bus.get_object(sender, AGENT_PATH),
                                   "org.freedesktop.NetworkManager.SecretAgent")
            try:
                secrets = agent.GetSecrets(settings, conn, "802-1x", dbus.Array([], "s"),
                                           dbus.UInt32(1), timeout=10)
            except dbus.DBusException:
                continue
            got = secrets.get("802-1x", {})
            ok = (str(got.get("identity", "")) == params.get("identity")
                  and str(got.get("password", "")) == params.get("password"))
            break
        STATE["accepted" if ok else "refused"] += 1
        if ok and params.get("up_file"):
            # the switch opens the port: the test's gate lets traffic to the server through
            with open(params["up_file"], "w") as fh:
                fh.write("up\n")
    state = (nm.NMActiveConnectionState.NM_ACTIVE_CONNECTION_STATE_ACTIVATING if params.get("hang")
             else nm.NMActiveConnectionState.NM_ACTIVE_CONNECTION_STATE_ACTIVATED if ok
             else nm.NMActiveConnectionState.NM_ACTIVE_CONNECTION_STATE_DEACTIVATED)
    count = len(self.Get(MAIN_IFACE, "ActiveConnections")) + STATE["asked"] + 100
    devices = [dev] if str(dev) != "/" else []
    return dbus.ObjectPath(nm.AddActiveConnection(self, devices, conn, ap, str(count),
                                                  dbus.UInt32(state)))


def load(mock, parameters):
    # From the environment, not -p: the accepted password must not be on the mock's argv.
    parameters = dict(parameters, **json.loads(os.environ.get("DOT1X_MOCK_PARAMS", "{}")))
    STATE["params"] = {k: (bool(v) if k == "hang" else str(v)) for k, v in parameters.items()}
    nm.load(mock, {})
    dbusmock.get_object(nm.MANAGER_OBJ).AddMethod(MAIN_IFACE, "ActivateConnection", "ooo", "o",
                                                  activate)
    AgentManager(mock.connection, AGENT_MANAGER)
