"""NetworkManager over the system D-Bus, with jeepney (no GLib, no dbus-python).

One :class:`Activation` per login: it registers this process as a NetworkManager
secret agent for as long as it lasts, activates the connection, answers
NetworkManager's ``GetSecrets`` for that connection's ``802-1x`` setting with
the user's identity and secret (never for another connection, never stored),
and waits for the activation's state.  The secret goes only into a D-Bus reply
to ``org.freedesktop.NetworkManager`` (the bus daemon checks the sender): never
into a profile file, a command line or a log.
"""

import time

from jeepney import DBusAddress, MessageType, new_error, new_method_call, new_method_return
from jeepney.io.blocking import open_dbus_connection
from jeepney.low_level import HeaderFields
from jeepney.wrappers import DBusErrorResponse, unwrap_msg

NM_BUS = "org.freedesktop.NetworkManager"
NM = DBusAddress("/org/freedesktop/NetworkManager", NM_BUS, "org.freedesktop.NetworkManager")
SETTINGS = DBusAddress("/org/freedesktop/NetworkManager/Settings", NM_BUS,
                       "org.freedesktop.NetworkManager.Settings")
AGENT_MANAGER = DBusAddress("/org/freedesktop/NetworkManager/AgentManager", NM_BUS,
                            "org.freedesktop.NetworkManager.AgentManager")
BUS = DBusAddress("/org/freedesktop/DBus", "org.freedesktop.DBus", "org.freedesktop.DBus")
AGENT_PATH = "/org/freedesktop/NetworkManager/SecretAgent"
AGENT_IFACE = "org.freedesktop.NetworkManager.SecretAgent"
AGENT_ID = "org.otpme_auth.dot1x"
PROPS = "org.freedesktop.DBus.Properties"
INTROSPECTION = """<node><interface name="%s">
<method name="GetSecrets"><arg type="a{sa{sv}}" direction="in"/><arg type="o" direction="in"/>
<arg type="s" direction="in"/><arg type="as" direction="in"/><arg type="u" direction="in"/>
<arg type="a{sa{sv}}" direction="out"/></method>
<method name="CancelGetSecrets"><arg type="o" direction="in"/><arg type="s" direction="in"/></method>
<method name="SaveSecrets"><arg type="a{sa{sv}}" direction="in"/><arg type="o" direction="in"/></method>
<method name="DeleteSecrets"><arg type="a{sa{sv}}" direction="in"/><arg type="o" direction="in"/></method>
</interface></node>""" % "org.freedesktop.NetworkManager.SecretAgent"
ACTIVE_IFACE = "org.freedesktop.NetworkManager.Connection.Active"

# NMActiveConnectionState
ACTIVATING, ACTIVATED, DEACTIVATING, DEACTIVATED = 1, 2, 3, 4
# NMSettingSecretFlags: NOT_SAVED (ask an agent every time, never store)
NOT_SAVED = 0x2
# NMSettingsUpdate2Flags: IN_MEMORY (NetworkManager's copy only; the file on disk stays)
UPDATE2_IN_MEMORY = 0x2
POLL = 0.2


class Dot1xError(Exception):
    """A problem bringing the port up; the text is safe for the log and the user."""


class Refused(Dot1xError):
    """The authenticator (RADIUS) did not accept the credential."""


class TimedOut(Dot1xError):
    """No answer within dot1x_timeout."""


def _unwrap(value):
    """jeepney's variants are (signature, value) pairs: strip them, recursively."""
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str) \
            and value[0] and value[0][0] in "sbuiaoyvxtdnq(":
        return _unwrap(value[1])
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


def _text(value):
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).rstrip(b"\0").decode("utf-8", "replace")
    return value if isinstance(value, str) else None


class Activation:
    """Bring ``connection_name`` up with (identity, secret) for this activation only."""

    def __init__(self, connection_name, identity, secret, timeout, log=None):
        self.name = connection_name
        self.identity = identity
        self._secret = secret          # an otpme_auth Secret: revealed only into the reply
        self.timeout = timeout
        self.log = log or (lambda text: None)
        self.conn = None
        self.conn_path = None
        self._raw_settings = None
        self.secrets_asked = 0
        self.nm_owner = None   # NetworkManager's unique bus name: the only caller we answer

    # -- D-Bus plumbing -------------------------------------------------------

    def _call(self, address, method, signature=None, body=(), deadline=None):
        """Call a method, answering NetworkManager's calls to our agent meanwhile."""
        msg = new_method_call(address, method, signature, body)
        serial = next(self.conn.outgoing_serial)
        self.conn.send(msg, serial=serial)
        deadline = deadline or time.monotonic() + max(self.timeout, 1)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimedOut("NetworkManager did not answer %s within %gs" % (method, self.timeout))
            try:
                reply = self.conn.receive(timeout=remaining)
            except TimeoutError:
                continue
            if reply.header.fields.get(HeaderFields.reply_serial) == serial:
                return unwrap_msg(reply)
            self._dispatch(reply)

    def _pump(self, seconds):
        """Answer incoming agent calls for up to ``seconds``."""
        deadline = time.monotonic() + seconds
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                msg = self.conn.receive(timeout=remaining)
            except TimeoutError:
                return
            self._dispatch(msg)

    def _dispatch(self, msg):
        if msg.header.message_type is not MessageType.method_call:
            return
        fields = msg.header.fields
        member = fields.get(HeaderFields.member)
        if self.nm_owner is None or fields.get(HeaderFields.sender) != self.nm_owner:
            # Anyone on the system bus can call us: only NetworkManager gets an answer.
            self.conn.send(new_error(msg, "org.freedesktop.DBus.Error.AccessDenied",
                                     "s", ("only NetworkManager may call this agent",)))
            return
        if fields.get(HeaderFields.path) == AGENT_PATH and member == "Introspect":
            self.conn.send(new_method_return(msg, "s", (INTROSPECTION,)))
            return
        if fields.get(HeaderFields.path) != AGENT_PATH or fields.get(HeaderFields.interface) not in (
                AGENT_IFACE, None):
            self.conn.send(new_error(msg, "org.freedesktop.DBus.Error.UnknownObject"))
            return
        if member == "GetSecrets":
            self._get_secrets(msg)
        elif member in ("CancelGetSecrets", "SaveSecrets", "DeleteSecrets"):
            # Nothing is ever saved: SaveSecrets/DeleteSecrets are accepted and ignored.
            self.conn.send(new_method_return(msg))
        else:
            self.conn.send(new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod"))

    def _get_secrets(self, msg):
        _settings, path, setting, _hints, _flags = msg.body
        if path != self.conn_path or setting != "802-1x":
            # Not ours: another agent (the desktop's) may know.
            self.conn.send(new_error(msg, "org.freedesktop.NetworkManager.SecretAgent.NoSecrets",
                                     "s", ("otpme-auth answers only for its 802.1x login",)))
            return
        self.secrets_asked += 1
        if self.secrets_asked > 1:
            # NetworkManager asks again when the first answer was refused: do not loop.
            self.conn.send(new_error(msg, "org.freedesktop.NetworkManager.SecretAgent.UserCanceled",
                                     "s", ("the credential was refused",)))
            return
        body = ({"802-1x": {"identity": ("s", self.identity),
                            "password": ("s", self._secret.reveal())}},)
        self.conn.send(new_method_return(msg, "a{sa{sv}}", body))

    def _prop(self, path, iface, name):
        addr = DBusAddress(path, NM_BUS, PROPS)
        return _unwrap(self._call(addr, "Get", "ss", (iface, name))[0])

    # -- the steps --------------------------------------------------------------

    def open(self):
        try:
            self.conn = open_dbus_connection(bus="SYSTEM")
        except (OSError, KeyError, ValueError) as exc:
            raise Dot1xError("the system D-Bus is not reachable (%s)" % exc.__class__.__name__)
        try:
            self._call(NM, "GetDevices")
        except DBusErrorResponse as exc:
            if "ServiceUnknown" in str(exc.name) or "NameHasNoOwner" in str(exc.name):
                raise Dot1xError("NetworkManager is not running (no %s on the system bus)"
                                 % NM_BUS)
            raise Dot1xError("NetworkManager refused GetDevices: %s" % exc.name)
        self.nm_owner = self._call(BUS, "GetNameOwner", "s", (NM_BUS,))[0]

    def find(self):
        """The connection's object path and settings; refuse what would leak the credential."""
        paths = self._call(SETTINGS, "ListConnections")[0]
        for path in paths:
            addr = DBusAddress(path, NM_BUS, "org.freedesktop.NetworkManager.Settings.Connection")
            raw = self._call(addr, "GetSettings")[0]
            settings = _unwrap(raw)
            if settings.get("connection", {}).get("id") == self.name:
                self.conn_path, self._raw_settings = path, raw
                return settings
        raise Dot1xError("NetworkManager has no connection named %r (dot1x_connection)" % self.name)

    def check(self, settings):
        dot1x = settings.get("802-1x")
        if not dot1x:
            raise Dot1xError("connection %r has no 802-1x section: configure it as the "
                             "documentation shows (nmcli ... 802-1x.eap ttls ...)" % self.name)
        ca = _text(dot1x.get("ca-cert")) or dot1x.get("ca-path") or dot1x.get("system-ca-certs")
        suffix = dot1x.get("domain-suffix-match") or dot1x.get("domain-match")
        if not ca or not suffix:
            raise Dot1xError("connection %r has no 802-1x.ca-cert or no 802-1x.domain-suffix-match: "
                             "refusing to send a credential to a RADIUS server that is not "
                             "authenticated" % self.name)
        flags = dot1x.get("password-flags", 0)
        if not (isinstance(flags, int) and flags & NOT_SAVED):
            # A saved password would be the profile's, not this user's: ask NM for ours.
            self.log("connection %r: 802-1x.password-flags is not 2 (not-saved); NetworkManager "
                     "may use the profile's password instead of asking otpme-auth" % self.name)

    def set_identity(self, settings):
        """Put the user's name into the profile's ``802-1x.identity``, in memory only.

        NetworkManager sends the profile's identity, not one an agent returns with the
        secrets (identity is not a secret), so seed 001's placeholder ``user`` would reach
        the RADIUS server.  ``Update2`` with the in-memory flag changes NetworkManager's
        copy, never the file on disk; the password is not part of it (an agent secret).
        A NetworkManager without ``Update2`` (before 1.12): the profile's identity is used.
        """
        if _text(settings["802-1x"].get("identity")) == self.identity:
            return
        raw = {name: dict(values) for name, values in self._raw_settings.items()}
        raw["802-1x"]["identity"] = ("s", self.identity)
        addr = DBusAddress(self.conn_path, NM_BUS,
                           "org.freedesktop.NetworkManager.Settings.Connection")
        try:
            self._call(addr, "Update2", "a{sa{sv}}ua{sv}", (raw, UPDATE2_IN_MEMORY, {}))
        except DBusErrorResponse as exc:
            if "UnknownMethod" not in str(exc.name):
                raise Dot1xError("NetworkManager refused to set connection %r's 802-1x.identity "
                                 "in memory: %s" % (self.name, exc.name))
            self.log("connection %r: NetworkManager cannot update it in memory (no Update2); "
                     "its 802-1x.identity %r is sent, not the user's"
                     % (self.name, _text(settings["802-1x"].get("identity"))))

    def device(self, settings):
        iface = settings.get("connection", {}).get("interface-name")
        if iface:
            try:
                return self._call(NM, "GetDeviceByIpIface", "s", (iface,))[0]
            except DBusErrorResponse:
                raise Dot1xError("connection %r names interface %r, which NetworkManager does "
                                 "not have" % (self.name, iface))
        return "/"

    def activate(self):
        deadline = time.monotonic() + self.timeout
        self._call(AGENT_MANAGER, "Register", "s", (AGENT_ID,), deadline=deadline)
        try:
            settings = self.find()
            self.check(settings)
            self.set_identity(settings)
            device = self.device(settings)
            active = self._call(NM, "ActivateConnection", "ooo", (self.conn_path, device, "/"),
                                deadline=deadline)[0]
            self._wait(active, deadline)
        finally:
            try:
                self._call(AGENT_MANAGER, "Unregister", deadline=time.monotonic() + 2)
            except (Dot1xError, DBusErrorResponse, OSError):
                pass

    def _wait(self, active, deadline):
        while True:
            try:
                state = self._prop(active, ACTIVE_IFACE, "State")
            except DBusErrorResponse:
                state = DEACTIVATED   # NetworkManager removed it: it failed
            if state == ACTIVATED:
                return
            if state in (DEACTIVATING, DEACTIVATED):
                raise Refused("802.1x on %r failed: the credential was refused (or the "
                              "authenticator did not answer)" % self.name)
            if time.monotonic() >= deadline:
                raise TimedOut("802.1x on %r did not complete within %gs (dot1x_timeout)"
                               % (self.name, self.timeout))
            self._pump(min(POLL, max(deadline - time.monotonic(), 0)))

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def bring_up(connection_name, identity, secret, timeout, log=None):
    act = Activation(connection_name, identity, secret, timeout, log)
    try:
        act.open()
        act.activate()
    except DBusErrorResponse as exc:
        raise Dot1xError("NetworkManager refused: %s %s" % (exc.name, str(exc.data)[-300:]))
    finally:
        act.close()
