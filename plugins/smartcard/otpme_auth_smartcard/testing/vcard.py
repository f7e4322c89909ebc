"""A virtual YubiKey OTP applet: a small TCP client of vpcd (vsmartcard) that answers the
real APDUs yubikit sends over PC/SC (shared/TESTING-INFRA.md):

* SELECT ``A0000005272001`` (OTP): version (3), programming sequence (1), touch/slot
  flags (2, little-endian), 9000.  The management AID and anything else: 6A82.
* INS 01 P1 10: the serial, 4 bytes big-endian.
* INS 01 P1 30 / 38: HMAC-SHA1 of the 64-byte padded challenge under slot 1 / 2, with
  HMAC_LT64 (trailing bytes equal to the last byte are padding), exactly 20 bytes.
  A touch-triggered slot answers only after ``touch()`` (or never, like a key nobody
  touches); ``delay`` makes every HMAC answer slow.
* INS 01 P1 01 / 03: a slot configuration write (52 bytes + 6-byte access code):
  an HMAC-SHA1 configuration's key is taken (16 bytes of key + 4 of uid), the sequence
  moves on, and the status is answered.

vpcd's framing: each message is a 2-byte big-endian length and a payload; a 1-byte payload
is control (0 power off, 1 power on, 2 reset, 4 send the ATR).
"""

import hashlib
import hmac
import socket
import struct
import threading
import time

# A USB YubiKey 5 (atr[1] & 0xF0 == 0xF0: USB).
ATR = bytes.fromhex("3bfd1300008131fe158073c021c057597562694b657940")
OTP_AID = bytes.fromhex("A0000005272001")

SW_OK = b"\x90\x00"
SW_NOT_FOUND = b"\x6a\x82"
SW_INS = b"\x6d\x00"
SW_WRONG_DATA = b"\x6a\x80"
SW_COND = b"\x69\x85"   # conditions of use not satisfied (no touch, empty slot)

CFG_CHAL_HMAC = 0x22
CFG_HMAC_LT64 = 0x04
CFG_CHAL_BTN_TRIG = 0x08
TKT_CHAL_RESP = 0x40


class VirtualYubiKey:
    def __init__(self, port, serial=12345678, slots=None, touch=(), version=(5, 4, 3),
                 delay=0.0, touch_after=None, host="127.0.0.1"):
        """``slots``: {1: secret bytes, 2: ...}; ``touch``: the slots that need a touch;
        ``touch_after``: seconds after which the user touches (None: only ``touch()``)."""
        self.port, self.host = port, host
        self.serial = serial
        self.slots = dict(slots or {})
        self.touch_slots = set(touch)
        self.version = version
        self.delay = delay
        self.touch_after = touch_after
        self.seq = 1
        self.apdus = []          # the INS/P1 of each APDU seen (never the data)
        self._touched = threading.Event()
        self._atr_sent = threading.Event()
        self._stop = threading.Event()
        self._sock = None
        self._thread = None

    # -- the card's state -------------------------------------------------------------

    def status(self):
        flags = 0
        for slot, valid, touch in ((1, 0x01, 0x04), (2, 0x02, 0x08)):
            if slot in self.slots:
                flags |= valid
                if slot in self.touch_slots:
                    flags |= touch
        return bytes(self.version) + bytes([self.seq & 0xFF]) + struct.pack("<H", flags)

    def touch(self):
        """The user touches the key: one pending (or the next) touch-triggered answer goes."""
        self._touched.set()

    # -- APDUs ------------------------------------------------------------------------

    def answer(self, apdu):
        if len(apdu) < 4:
            return SW_WRONG_DATA
        cla, ins, p1, p2 = apdu[:4]
        data = b""
        if len(apdu) > 5:
            lc = apdu[4]
            if lc == 0 and len(apdu) >= 7:  # extended length
                lc = int.from_bytes(apdu[5:7], "big")
                data = apdu[7:7 + lc]
            else:
                data = apdu[5:5 + lc]
        self.apdus.append((ins, p1))
        if ins == 0xA4 and p1 == 0x04:
            return self.status() + SW_OK if data == OTP_AID else SW_NOT_FOUND
        if ins != 0x01:
            return SW_INS
        if p1 == 0x10:
            return struct.pack(">I", self.serial) + SW_OK
        if p1 in (0x30, 0x38):
            return self._hmac(1 if p1 == 0x30 else 2, data)
        if p1 in (0x01, 0x03):
            return self._configure(1 if p1 == 0x01 else 2, data)
        return SW_WRONG_DATA

    def _hmac(self, slot, challenge):
        if slot not in self.slots or len(challenge) != 64:
            return SW_COND
        if self.delay:
            self._stop.wait(self.delay)
        if slot in self.touch_slots:
            if self.touch_after is not None:
                self._stop.wait(self.touch_after)
                self._touched.set()
            if not self._touched.wait(15):
                return SW_COND
            self._touched.clear()
        # HMAC_LT64: the padding is the run of bytes equal to the last one.
        last = challenge[-1]
        n = len(challenge)
        while n > 0 and challenge[n - 1] == last:
            n -= 1
        return hmac.new(self.slots[slot], challenge[:n], hashlib.sha1).digest() + SW_OK

    def _configure(self, slot, data):
        if len(data) < 52:
            return SW_WRONG_DATA
        uid, key = data[16:22], data[22:38]
        tkt, cfg = data[46], data[47]   # after fixed 16, uid 6, key 16, acc 6, fixed_size, ext
        if tkt & TKT_CHAL_RESP and cfg & CFG_CHAL_HMAC == CFG_CHAL_HMAC:
            self.slots[slot] = key + uid[:4]
            if cfg & CFG_CHAL_BTN_TRIG:
                self.touch_slots.add(slot)
            else:
                self.touch_slots.discard(slot)
        elif not any(data[:52]):
            self.slots.pop(slot, None)  # a delete
        else:
            return SW_WRONG_DATA
        self.seq += 1
        return self.status() + SW_OK

    # -- vpcd -------------------------------------------------------------------------

    def insert(self):
        # pcscd's socket appears before vpcd listens on every reader's port: retry a while.
        deadline = time.monotonic() + 10
        while True:
            try:
                self._sock = socket.create_connection((self.host, self.port), timeout=10)
                break
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self._sock.settimeout(None)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._thread = threading.Thread(target=self._run, daemon=True, name="vyubikey")
        self._thread.start()
        # pcscd has seen the card once it asked for the ATR
        if not self._atr_sent.wait(10):
            raise RuntimeError("pcscd never asked the virtual card for its ATR")
        return self

    def remove(self):
        self._stop.set()
        self._touched.set()
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._sock.close()
        if self._thread is not None:
            self._thread.join(5)

    def _recv(self, n):
        buf = b""
        while len(buf) < n:
            # vpcd writes the length and the payload separately: without a quick ACK,
            # Nagle on its side and our delayed ACK add 40 ms to every APDU, which no
            # USB YubiKey has (Linux clears QUICKACK again, so it is set before each read)
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            chunk = self._sock.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def _send(self, payload):
        self._sock.sendall(struct.pack(">H", len(payload)) + payload)

    def _run(self):
        try:
            while not self._stop.is_set():
                (length,) = struct.unpack(">H", self._recv(2))
                msg = self._recv(length)
                if len(msg) == 1:
                    if msg[0] == 4:
                        self._send(ATR)
                        self._atr_sent.set()
                    continue  # power off/on/reset: nothing to answer
                self._send(self.answer(msg))
        except (EOFError, OSError):
            pass
