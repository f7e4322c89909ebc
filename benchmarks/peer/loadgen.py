"""The one load generator both servers get (benchmarks/peer/run.py).

Closed loop, ``clients`` concurrent asyncio tasks in one process; every request opens a
NEW TCP connection and does a full TLS handshake (no session resumption: a PAM login is
a new process), sends one validation with a valid, never used one-time code, reads the
answer and closes.  Latency is counted from before ``connect`` to the last byte of the
answer, so both servers pay their handshake in it.

Codes are computed here, at send time, from the enrolled secrets (RFC 4226 HOTP,
RFC 6238 TOTP): no code of the servers' own is used to make them.
"""

import asyncio
import hashlib
import hmac
import json
import struct
import time
import urllib.parse


def hotp(secret: bytes, counter: int, digits: int = 6, digest=hashlib.sha1) -> str:
    """RFC 4226 HOTP value of ``counter`` (dynamic truncation, ``digits`` decimal digits)."""
    mac = hmac.new(secret, struct.pack(">Q", counter), digest).digest()
    off = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF
    return str(value % 10 ** digits).zfill(digits)


def totp(secret: bytes, now: float, digits: int = 6, period: int = 30, digest=hashlib.sha1) -> str:
    """RFC 6238 TOTP value at unix time ``now`` (T0 = 0)."""
    return hotp(secret, int(now // period), digits, digest)


class Codes:
    """Hands out one valid, never used (token, code) per call.

    TOTP: each token is used once in the whole benchmark (a step may never be reused,
    and one use per token means no two requests race on one token).  HOTP: client
    ``i`` of ``n`` owns tokens ``i, i+n, ...`` and steps each one's counter, so a
    token's codes arrive in order and none is sent twice.
    """

    def __init__(self, totp_tokens, hotp_tokens, pin):
        self.totp = list(totp_tokens)      # [(user, secret)]
        self.totp_next = 0
        self.hotp = list(hotp_tokens)      # [(user, secret)]
        self.counters = [0] * len(self.hotp)
        self.pin = pin

    def next_totp(self):
        if self.totp_next >= len(self.totp):
            return None
        user, secret = self.totp[self.totp_next]
        self.totp_next += 1
        return user, self.pin + totp(secret, time.time())

    def hotp_owner(self, client, clients):
        mine = list(range(client, len(self.hotp), clients))
        if not mine:
            raise ValueError("fewer HOTP tokens than clients")
        state = {"k": 0}

        def nxt():
            i = mine[state["k"] % len(mine)]
            state["k"] += 1
            user, secret = self.hotp[i]
            code = hotp(secret, self.counters[i])
            self.counters[i] += 1
            return user, self.pin + code
        return nxt


class Target:
    """How to ask one server: ``request(user, password)`` bytes and ``ok(head, body)``."""

    def __init__(self, name, port, ssl_ctx, request, ok):
        self.name, self.port, self.ssl, self.request, self.ok = name, port, ssl_ctx, request, ok


def ours_target(port, ssl_ctx):
    def request(user, password):
        body = json.dumps({"user": user, "password": password}).encode()
        return (b"POST /v1/auth HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)

    def ok(head, body):
        return head.startswith(b"HTTP/1.1 200") and b'"status":"ok"' in body.replace(b" ", b"")
    return Target("otpme-auth", port, ssl_ctx, request, ok)


def privacyidea_target(port, ssl_ctx):
    def request(user, password):
        body = urllib.parse.urlencode({"user": user, "pass": password}).encode()
        return (b"POST /validate/check HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n"
                b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)

    def ok(head, body):
        if not head.startswith(b"HTTP/1.1 200"):
            return False
        try:
            return json.loads(body)["result"]["value"] is True
        except (ValueError, KeyError, TypeError):
            return False
    return Target("privacyIDEA", port, ssl_ctx, request, ok)


async def one(target, req, timeout):
    r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", target.port, ssl=target.ssl), timeout)
    try:
        w.write(req)
        head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), timeout)
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            body = await asyncio.wait_for(r.read(), timeout)
        else:
            body = await asyncio.wait_for(r.readexactly(length), timeout)
        return head, body
    finally:
        w.close()
        try:
            await w.wait_closed()
        except (OSError, ConnectionError):
            pass


async def run(target, next_code_for, clients, duration, timeout=60.0):
    """``next_code_for(i)`` gives client ``i`` a callable returning (user, password) or None.

    Returns (count, elapsed seconds, latencies, errors).
    """
    lat, errors = [], []
    start = time.perf_counter()
    stop_at = start + duration
    ends = []

    async def client(i):
        nxt = next_code_for(i)
        while time.perf_counter() < stop_at:
            item = nxt()
            if item is None:
                break
            t0 = time.perf_counter()
            try:
                head, body = await one(target, target.request(*item), timeout)
                good = target.ok(head, body)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
                head, body, good = b"", repr(e).encode(), False
            lat.append(time.perf_counter() - t0)
            if not good:
                errors.append((head.split(b"\r\n", 1)[0] + b" " + body)[:200])
        ends.append(time.perf_counter())

    await asyncio.gather(*(client(i) for i in range(clients)))
    elapsed = max(ends) - start
    return len(lat), elapsed, lat, errors


def pct(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))]
