"""The YubiKey over PC/SC: the OTP application's HMAC-SHA1 challenge-response.

Imported only by the hooks of an enabled ``smartcard`` plugin and by ``otpme-auth
smartcard``.  The login path speaks the three OTP-applet APDUs itself, to libpcsclite
(the PC/SC client library) through ctypes: 2-6 ms of imports, where pyscard's package
costs 10-20 ms and yubikit (yubikey-manager) about 80 ms more; yubikit is only for
programming a card (``otpme-auth-admin token deploy``, on the server):

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


def _lib():
    """libpcsclite (the PC/SC client library pcscd's clients use), through ctypes."""
    global _LIB
    if _LIB is None:
        import ctypes
        try:
            lib = ctypes.CDLL("libpcsclite.so.1")
        except OSError as exc:
            raise CardError("PC/SC unavailable: libpcsclite.so.1 cannot be loaded (%s)"
                            % _short(exc)) from None
        long_, ulong = ctypes.c_long, ctypes.c_ulong   # LONG, DWORD (and the handles)
        p_ulong = ctypes.POINTER(ulong)
        for name, args in (
                ("SCardEstablishContext", [ulong, ctypes.c_void_p, ctypes.c_void_p,
                                           ctypes.POINTER(long_)]),
                ("SCardReleaseContext", [long_]),
                ("SCardListReaders", [long_, ctypes.c_char_p, ctypes.c_char_p, p_ulong]),
                ("SCardConnect", [long_, ctypes.c_char_p, ulong, ulong, ctypes.POINTER(long_),
                                  p_ulong]),
                ("SCardDisconnect", [long_, ulong]),
                ("SCardTransmit", [long_, ctypes.c_void_p, ctypes.c_char_p, ulong,
                                   ctypes.c_void_p, ctypes.c_char_p, p_ulong])):
            fn = getattr(lib, name)
            fn.argtypes, fn.restype = args, long_
        lib.pcsc_stringify_error.argtypes, lib.pcsc_stringify_error.restype = [long_], ctypes.c_char_p
        _LIB = (ctypes, lib)
    return _LIB


_LIB = None
SCARD_S_SUCCESS = 0
SCARD_SCOPE_USER = 0
SCARD_SHARE_SHARED = 2
SCARD_PROTOCOL_T0, SCARD_PROTOCOL_T1 = 1, 2
SCARD_LEAVE_CARD = 0
SCARD_E_NO_READERS_AVAILABLE = 0x8010002E


def _message(lib, code):
    try:
        return "%s (0x%08X)" % (lib.pcsc_stringify_error(code).decode("ascii", "replace"),
                                code & 0xFFFFFFFF)
    except Exception:
        return "0x%08X" % (code & 0xFFFFFFFF)


class _Context:
    """A PC/SC context (pcscd), released on close.  libpcsclite straight through ctypes:
    pyscard's package (its __init__ pulls in its reader/observer framework) costs 10-20 ms
    to import, ctypes and the library 2-6 ms."""

    def __init__(self):
        self.ctypes, self.lib = _lib()
        handle = self.ctypes.c_long(0)
        code = self.lib.SCardEstablishContext(SCARD_SCOPE_USER, None, None,
                                              self.ctypes.byref(handle))
        if code != SCARD_S_SUCCESS:
            raise CardError("PC/SC unavailable (is pcscd running?): %s"
                            % _message(self.lib, code))
        self.handle = handle.value

    def readers(self, name_filter):
        ctypes, lib = self.ctypes, self.lib
        size = ctypes.c_ulong(0)
        code = lib.SCardListReaders(self.handle, None, None, ctypes.byref(size))
        if code == SCARD_S_SUCCESS and size.value:
            buf = ctypes.create_string_buffer(size.value)
            code = lib.SCardListReaders(self.handle, None, buf, ctypes.byref(size))
        if code & 0xFFFFFFFF == SCARD_E_NO_READERS_AVAILABLE:
            return []
        if code != SCARD_S_SUCCESS:
            raise CardError("PC/SC unavailable (is pcscd running?): %s" % _message(lib, code))
        if not size.value:
            return []
        names = [n.decode("utf-8", "replace") for n in buf.raw[:size.value].split(b"\0") if n]
        wanted = (name_filter or "").lower()
        return [n for n in names if wanted in n.lower()]

    def connect(self, reader):
        """An open :class:`_Link` to the card in ``reader``, or None (empty reader)."""
        ctypes = self.ctypes
        hcard, protocol = ctypes.c_long(0), ctypes.c_ulong(0)
        code = self.lib.SCardConnect(self.handle, reader.encode("utf-8"), SCARD_SHARE_SHARED,
                                     SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, ctypes.byref(hcard),
                                     ctypes.byref(protocol))
        if code != SCARD_S_SUCCESS:
            return None
        return _Link(ctypes, self.lib, hcard.value, protocol.value)

    def close(self):
        self.lib.SCardReleaseContext(self.handle)


class _Link:
    def __init__(self, ctypes, lib, hcard, protocol):
        self.ctypes, self.lib, self.hcard, self.protocol = ctypes, lib, hcard, protocol
        # SCARD_IO_REQUEST {DWORD dwProtocol; DWORD cbPciLength}
        self.pci = (ctypes.c_ulong * 2)(protocol, 2 * ctypes.sizeof(ctypes.c_ulong))

    def apdu(self, ins, p1, data=b""):
        """The data of the card's answer to ``00 INS P1 00 [Lc data]``; CardError on a
        status other than 9000 (after following 61xx)."""
        command = bytes([0x00, ins, p1, 0x00]) + (bytes([len(data)]) + data if data else b"")
        answer = self._transmit(command)
        out = b""
        while len(answer) >= 2 and answer[-2] == 0x61:   # more data: GET RESPONSE
            out += answer[:-2]
            answer = self._transmit(bytes([0x00, 0xC0, 0x00, 0x00, answer[-1]]))
        if len(answer) < 2:
            raise CardError("the card gave no status word")
        status = (answer[-2] << 8) | answer[-1]
        if status != 0x9000:
            raise CardError("the card answered %04X" % status)
        return out + answer[:-2]

    def _transmit(self, command):
        ctypes = self.ctypes
        buf = ctypes.create_string_buffer(258)
        size = ctypes.c_ulong(len(buf))
        code = self.lib.SCardTransmit(self.hcard, ctypes.byref(self.pci), command, len(command),
                                      None, buf, ctypes.byref(size))
        if code != SCARD_S_SUCCESS:
            raise CardError("transmit failed: %s" % _message(self.lib, code))
        return buf.raw[:size.value]

    def select_otp(self):
        """The OTP application's status (version, sequence, touch level), or None."""
        try:
            status = self.apdu(0xA4, 0x04, OTP_AID)
        except CardError:
            return None   # some other card
        return status if len(status) >= 6 else None

    def close(self):
        self.lib.SCardDisconnect(self.hcard, SCARD_LEAVE_CARD)


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
