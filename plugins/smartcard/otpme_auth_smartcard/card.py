"""The YubiKey over PC/SC: yubikit's OTP application (HMAC-SHA1 challenge-response).

Imported only by the hooks of an enabled ``smartcard`` plugin and by ``otpme-auth
smartcard``: this is where yubikit, ykman and pyscard come in.
"""

import threading


class CardError(Exception):
    """The card (or pcscd) could not be used; the text is for the log, never a secret."""


class CardTimeout(CardError):
    """The card did not answer in time (not touched, or slow)."""


def _devices(reader_filter):
    try:
        from ykman.pcsc import list_devices
        return list_devices(reader_filter)
    except Exception as exc:  # pyscard raises its own classes when pcscd is not running
        raise CardError("PC/SC unavailable (is pcscd running?): %s" % _short(exc)) from None


def _short(exc):
    return ("%s: %s" % (type(exc).__name__, exc))[:160]


class Card:
    """One YubiKey in one reader: its serial and which OTP slots are configured."""

    def __init__(self, device, serial, slots, touch, version):
        self.device = device
        self.serial = serial
        self.slots = set(slots)
        self.touch = set(touch)
        self.version = version

    @property
    def reader(self):
        return self.device.fingerprint

    def session(self):
        """An open ``(connection, YubiOtpSession)``; close the connection after use."""
        from yubikit.core.smartcard import SmartCardConnection
        from yubikit.yubiotp import YubiOtpSession
        conn = self.device.open_connection(SmartCardConnection)
        try:
            return conn, YubiOtpSession(conn)
        except BaseException:
            conn.close()
            raise

    def hmac(self, slot, challenge, timeout):
        """The card's HMAC-SHA1 (HMAC_LT64) of ``challenge`` in ``slot``: 20 bytes.

        Waits at most ``timeout`` seconds (a touch-triggered slot waits for the touch):
        then :class:`CardTimeout`.  The card's call runs in a thread that is left behind
        on a timeout (PC/SC has no way to cancel a transmit in flight).
        """
        from yubikit.yubiotp import SLOT
        result = {}

        def run():
            try:
                conn, session = self.session()
                try:
                    result["response"] = session.calculate_hmac_sha1(SLOT(slot), challenge)
                finally:
                    conn.close()
            except Exception as exc:
                result["error"] = exc

        thread = threading.Thread(target=run, daemon=True, name="otpme-smartcard")
        thread.start()
        thread.join(timeout)
        if thread.is_alive():
            raise CardTimeout("no answer within %ss" % timeout)
        if "error" in result:
            raise CardError(_short(result["error"]))
        response = result.get("response")
        if not isinstance(response, bytes) or len(response) != 20:
            raise CardError("the card's answer is not 20 bytes")
        return response


def _probe(device):
    """A :class:`Card` for a reader holding a YubiKey OTP application, else None."""
    from yubikit.core import ApplicationNotAvailableError
    from yubikit.yubiotp import SLOT, YubiOtpSession
    from yubikit.core.smartcard import SmartCardConnection
    try:
        conn = device.open_connection(SmartCardConnection)
    except Exception:
        return None  # an empty reader
    try:
        try:
            session = YubiOtpSession(conn)
        except ApplicationNotAvailableError:
            return None  # some other card
        try:
            serial = session.get_serial()
        except Exception:
            serial = None  # serial not visible (a configuration flag): still usable
        state = session.get_config_state()
        slots = [s for s in (1, 2) if state.is_configured(SLOT(s))]
        touch = [s for s in slots if _touch(state, SLOT(s))]
        return Card(device, serial, slots, touch, tuple(session.version))
    finally:
        conn.close()


def _touch(state, slot):
    try:
        return bool(state.is_touch_triggered(slot))
    except Exception:  # older firmware does not say
        return False


def find(reader_filter):
    """Every YubiKey in a reader whose name contains ``reader_filter``."""
    cards = []
    for device in _devices(reader_filter):
        try:
            card = _probe(device)
        except Exception as exc:
            raise CardError("reader %s: %s" % (device.fingerprint, _short(exc))) from None
        if card is not None:
            cards.append(card)
    return cards
