"""The YubiKey over PC/SC: the OTP application's HMAC-SHA1 challenge-response.

Imported only by the hooks of an enabled ``smartcard`` plugin and by ``otpme-auth
smartcard``.  The login path speaks the three OTP-applet APDUs itself over pyscard's
low-level ``smartcard.scard`` (about 9 ms to import); yubikit (yubikey-manager, about
80 ms more) is only for programming a card (``otpme-auth-admin token deploy``):

* ``SELECT A0000005272001`` -> version (3 bytes), programming sequence, touch level
  (2 bytes, little-endian: 0x01/0x02 slot 1/2 configured, 0x04/0x08 slot 1/2 touch), 9000;
* ``00 01 10 00`` -> the serial, 4 bytes big-endian (refused when the serial is hidden);
* ``00 01 30|38 00 40`` + the challenge padded to 64 bytes with a byte unlike its last
  (HMAC_LT64: the card drops the trailing run of equal bytes) -> 20 bytes.
"""

import threading

OTP_AID = bytes.fromhex("A0000005272001")
SLOT_HMAC = {1: 0x30, 2: 0x38}
SLOT_SERIAL = 0x10


class CardError(Exception):
    """The card (or pcscd) could not be used; the text is for the log, never a secret."""


class CardTimeout(CardError):
    """The card did not answer in time (not touched, or slow)."""


def _short(exc):
    return ("%s: %s" % (type(exc).__name__, exc))[:160]


class _Context:
    """A PC/SC context (pcscd), released on close."""

    def __init__(self):
        from smartcard import scard
        self.scard = scard
        try:
            hresult, self.handle = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        except Exception as exc:   # pyscard raises its own classes in some versions
            raise CardError("PC/SC unavailable (is pcscd running?): %s" % _short(exc)) from None
        if hresult != scard.SCARD_S_SUCCESS:
            raise CardError("PC/SC unavailable (is pcscd running?): %s"
                            % scard.SCardGetErrorMessage(hresult))

    def readers(self, name_filter):
        scard = self.scard
        hresult, readers = scard.SCardListReaders(self.handle, [])
        if hresult in (scard.SCARD_E_NO_READERS_AVAILABLE, getattr(scard, "SCARD_E_READER_UNAVAILABLE", None)):
            return []
        if hresult != scard.SCARD_S_SUCCESS:
            raise CardError("PC/SC unavailable (is pcscd running?): %s"
                            % scard.SCardGetErrorMessage(hresult))
        wanted = (name_filter or "").lower()
        return [r for r in readers or () if wanted in r.lower()]

    def connect(self, reader):
        """An open :class:`_Link` to the card in ``reader``, or None (empty reader)."""
        scard = self.scard
        hresult, hcard, protocol = scard.SCardConnect(
            self.handle, reader, scard.SCARD_SHARE_SHARED,
            scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1)
        if hresult != scard.SCARD_S_SUCCESS:
            return None
        return _Link(scard, hcard, protocol)

    def close(self):
        try:
            self.scard.SCardReleaseContext(self.handle)
        except Exception:
            pass


class _Link:
    def __init__(self, scard, hcard, protocol):
        self.scard, self.hcard, self.protocol = scard, hcard, protocol

    def apdu(self, ins, p1, data=b""):
        """The data of the card's answer to ``00 INS P1 00 [Lc data]``; CardError on a
        status other than 9000 (after following 61xx)."""
        command = [0x00, ins, p1, 0x00] + ([len(data)] + list(data) if data else [])
        answer = self._transmit(command)
        out = b""
        while len(answer) >= 2 and answer[-2] == 0x61:   # more data: GET RESPONSE
            out += bytes(answer[:-2])
            answer = self._transmit([0x00, 0xC0, 0x00, 0x00, answer[-1]])
        if len(answer) < 2:
            raise CardError("the card gave no status word")
        status = (answer[-2] << 8) | answer[-1]
        if status != 0x9000:
            raise CardError("the card answered %04X" % status)
        return out + bytes(answer[:-2])

    def _transmit(self, command):
        hresult, answer = self.scard.SCardTransmit(self.hcard, self.protocol, command)
        if hresult != self.scard.SCARD_S_SUCCESS:
            raise CardError("transmit failed: %s" % self.scard.SCardGetErrorMessage(hresult))
        return answer

    def select_otp(self):
        """The OTP application's status (version, sequence, touch level), or None."""
        try:
            status = self.apdu(0xA4, 0x04, OTP_AID)
        except CardError:
            return None   # some other card
        return status if len(status) >= 6 else None

    def close(self):
        try:
            self.scard.SCardDisconnect(self.hcard, self.scard.SCARD_LEAVE_CARD)
        except Exception:
            pass


class Card:
    """One YubiKey in one reader: its serial and which OTP slots are configured."""

    def __init__(self, reader, serial, slots, touch, version):
        self.reader = reader
        self.serial = serial
        self.slots = set(slots)
        self.touch = set(touch)
        self.version = version

    def hmac(self, slot, challenge, timeout):
        """The card's HMAC-SHA1 (HMAC_LT64) of ``challenge`` in ``slot``: 20 bytes.

        Waits at most ``timeout`` seconds (a touch-triggered slot waits for the touch):
        then :class:`CardTimeout`.  The card's call runs in a thread that is left behind
        on a timeout (PC/SC has no way to cancel a transmit in flight).
        """
        if slot not in SLOT_HMAC or not 1 <= len(challenge) <= 63:
            raise CardError("slot %r / a challenge of %d bytes cannot be sent" % (slot, len(challenge)))
        padded = challenge.ljust(64, b"\1" if challenge.endswith(b"\0") else b"\0")
        result = {}

        def run():
            try:
                ctx = _Context()
                try:
                    link = ctx.connect(self.reader)
                    if link is None:
                        raise CardError("the card was removed")
                    try:
                        if link.select_otp() is None:
                            raise CardError("the card in %s is no longer a YubiKey" % self.reader)
                        result["response"] = link.apdu(0x01, SLOT_HMAC[slot], padded)
                    finally:
                        link.close()
                finally:
                    ctx.close()
            except Exception as exc:
                result["error"] = exc

        thread = threading.Thread(target=run, daemon=True, name="otpme-smartcard")
        thread.start()
        thread.join(timeout)
        if thread.is_alive():
            raise CardTimeout("no answer within %ss" % timeout)
        if "error" in result:
            exc = result["error"]
            raise CardError(str(exc) if isinstance(exc, CardError) else _short(exc))
        response = result.get("response")
        if not isinstance(response, bytes) or len(response) != 20:
            raise CardError("the card's answer is not 20 bytes")
        return response


def _probe(link, reader):
    """A :class:`Card` for a reader holding a YubiKey OTP application, else None."""
    status = link.select_otp()
    if status is None:
        return None
    version = tuple(status[:3])
    try:
        serial = int.from_bytes(link.apdu(0x01, SLOT_SERIAL), "big")
    except CardError:
        serial = None   # serial not visible (a configuration flag): still usable
    flags = int.from_bytes(status[4:6], "little")
    slots = [s for s, bit in ((1, 0x01), (2, 0x02)) if flags & bit]
    touch = [s for s, bit in ((1, 0x04), (2, 0x08)) if s in slots and flags & bit
             and version >= (3, 0, 0)]
    return Card(reader, serial, slots, touch, version)


def find(reader_filter):
    """Every YubiKey in a reader whose name contains ``reader_filter``."""
    ctx = _Context()
    try:
        cards = []
        for reader in ctx.readers(reader_filter):
            link = ctx.connect(reader)
            if link is None:
                continue   # an empty reader
            try:
                card = _probe(link, reader)
            except CardError as exc:
                raise CardError("reader %s: %s" % (reader, exc)) from None
            finally:
                link.close()
            if card is not None:
                cards.append(card)
        return cards
    finally:
        ctx.close()
