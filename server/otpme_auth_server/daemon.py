"""The HTTP/1.1 + JSON over TLS front end (asyncio, keep-alive, SO_REUSEPORT).

One event loop per process; ``otpme-auth-server run --workers N`` starts N such
processes on the same port (the kernel spreads connections).  Hosts authenticate
with the client certificate they received at join (mutual TLS, CA pinned).
"""

import asyncio
import gc
import json
import logging
import os
import resource
import signal
import ssl
import time
from collections import OrderedDict

from . import PROTOCOL_VERSION
from .auth import Engine
from .crypto import Passwords, SecretBox
from .errors import BadRequest, ServerError
from .protocol import MAX_HEADER, error_body, parse_body, parse_head, parse_radius
from .store import Store

log = logging.getLogger("otpme_auth_server")

IDLE_TIMEOUT = 60  # seconds a keep-alive connection may stay idle (config idle_timeout)
# File descriptors kept free of connections (store, pools, logs) and the most
# connections one accept burst can take before they are counted (the listen backlog).
FD_RESERVE = 64
BACKLOG = 128
_REASON = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 408: "Request Timeout", 411: "Length Required", 413: "Payload Too Large",
           431: "Request Header Fields Too Large", 500: "Internal Server Error",
           503: "Service Unavailable"}


def ssl_context(directory: str) -> ssl.SSLContext:
    """Server TLS context: our certificate, client certificates optional but CA-checked."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(os.path.join(directory, "server.pem"), os.path.join(directory, "server.key"))
    ctx.load_verify_locations(os.path.join(directory, "ca.pem"))
    # Optional so that a host without a certificate can join; every other request
    # checks that one was presented (check_host).
    ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def _peer(writer):
    obj = writer.get_extra_info("ssl_object")
    if obj is None:
        return None
    der = obj.getpeercert(binary_form=True)
    if not der:
        return None
    cn = None
    for rdn in obj.getpeercert().get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                cn = value
    return (cn, der) if cn else None


def connection_limits(cfg) -> dict:
    """The connection limits of one server process (docs/server.md, "Limits").

    ``max_connections`` 0 (the default) means: what the open-file limit allows
    (soft RLIMIT_NOFILE less a reserve for the store and one accept burst).  Half of
    it at most is held by peers without a client certificate (in the TLS handshake,
    joining, or without one); the rest is always kept for joined hosts.
    """
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    room = (soft if soft != resource.RLIM_INFINITY else 65536) - FD_RESERVE - BACKLOG
    total = int(cfg["max_connections"]) or room
    total = max(2, min(total, room))
    unauth = int(cfg["max_unauthenticated"]) or total // 2
    unauth = max(1, min(unauth, total - 1))
    return {"total": total, "unauthenticated": unauth,
            "per_address": max(1, min(int(cfg["max_unauthenticated_per_address"]), unauth))}


class _Conn:
    """One accepted connection, while it has no client certificate."""

    __slots__ = ("addr", "transport", "task", "evicted", "started", "anonymous")

    def __init__(self, addr, transport, task):
        self.evicted = False
        self.addr = addr
        self.transport = transport
        self.task = task
        self.started = time.monotonic()
        self.anonymous = False  # the handshake is done and showed no client certificate


#: A handshake younger than this is not cut to keep one address within its share: real
#: handshakes take milliseconds, a stalled one is evictable after this (docs/server.md).
HANDSHAKE_GRACE = 2.0


def _victim(conns, now, fresh_ok):
    """The connection to close to make room, oldest first: one that finished its handshake
    without a certificate, then a handshake older than HANDSHAKE_GRACE, then (``fresh_ok``,
    for the global limits) any; None if there is none."""
    conns = list(conns)
    for conn in conns:
        if conn.anonymous:
            return conn
    for conn in conns:
        if now - conn.started >= HANDSHAKE_GRACE:
            return conn
    return conns[0] if fresh_ok and conns else None


class Server:
    """One process's listener and its engine."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.store = Store(cfg.db)
        self.box = SecretBox.from_dir(cfg.dir)
        self.engine = Engine(cfg, self.store, self.box, Passwords(cfg["argon2"]))
        self.max_body = cfg["max_body"]
        self.limits = connection_limits(cfg)
        self.handshake_timeout = float(cfg["tls_handshake_timeout"])
        self.idle_timeout = float(cfg["idle_timeout"])
        self.head_timeout = float(cfg["head_timeout"])
        self.body_timeout = float(cfg["body_timeout"])
        self.n_conns = 0               # every open connection
        self.unauth = OrderedDict()    # connections without a client certificate, oldest first
        self.unauth_by_addr = {}       # source address -> OrderedDict of its unauthenticated ones
        self.evicted = 0

    # -- connection accounting (docs/server.md, "Limits") ---------------------------------

    def _admit(self, writer) -> _Conn | None:
        """Count a new connection as unauthenticated; make room by closing the oldest
        unauthenticated ones (of its address, then of all).  None: no room at all
        (every connection belongs to a joined host); the caller closes it."""
        peer = writer.get_extra_info("peername")
        addr = peer[0] if isinstance(peer, tuple) and peer else "?"
        conn = _Conn(addr, writer.transport, asyncio.current_task())
        mine = self.unauth_by_addr.setdefault(addr, OrderedDict())
        now = time.monotonic()
        while len(mine) >= self.limits["per_address"]:
            # A joined host's own connections start here too (a busy host opens many
            # at once): a fresh handshake is never cut for the per-address share.
            victim = _victim(mine.values(), now, fresh_ok=False)
            if victim is None:
                break
            self._evict(victim)
        while self.unauth and len(self.unauth) >= self.limits["unauthenticated"]:
            self._evict(_victim(self.unauth.values(), now, fresh_ok=True))
        while self.unauth and self.n_conns >= self.limits["total"]:
            self._evict(_victim(self.unauth.values(), now, fresh_ok=True))
        if self.n_conns >= self.limits["total"]:
            return None
        self.n_conns += 1
        self.unauth[id(conn)] = conn
        self.unauth_by_addr.setdefault(addr, OrderedDict())[id(conn)] = conn
        return conn

    def _authenticated(self, conn: _Conn) -> None:
        """The peer showed a CA-signed client certificate: no longer evictable."""
        self._forget(conn)

    def _forget(self, conn: _Conn) -> None:
        self.unauth.pop(id(conn), None)
        mine = self.unauth_by_addr.get(conn.addr)
        if mine is not None:
            mine.pop(id(conn), None)
            if not mine:
                del self.unauth_by_addr[conn.addr]

    def _evict(self, conn: _Conn) -> None:
        self._forget(conn)
        conn.evicted = True
        self.evicted += 1
        conn.transport.abort()
        if conn.task is not None:
            conn.task.cancel()

    def _response(self, status: int, body: dict, keep_alive: bool) -> bytes:
        payload = json.dumps(body, separators=(",", ":")).encode()
        head = (f"HTTP/1.1 {status} {_REASON.get(status, 'Error')}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
                f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n")
        return head.encode() + payload

    async def dispatch(self, method: str, path: str, body: bytes, peer) -> tuple[int, dict]:
        """Route one request; BadRequest becomes its documented error answer."""
        if path == "/v1/ping":
            if method != "GET":
                raise BadRequest("method_not_allowed", "use GET", 405)
            return 200, {"status": "ok", "realm": self.cfg["realm"], "site": self.cfg["site"],
                         "protocol": PROTOCOL_VERSION}
        if path == "/v1/radius/auth":
            if method != "POST":
                raise BadRequest("method_not_allowed", "use POST", 405)
            return self._radius_answer(await self.engine.radius_authenticate(peer, parse_radius(body)))
        if path not in ("/v1/preauth", "/v1/auth", "/v1/join", "/v1/account"):
            raise BadRequest("not_found", "no such endpoint", 404)
        if method != "POST":
            raise BadRequest("method_not_allowed", "use POST", 405)
        req = parse_body(path, body)
        if path == "/v1/join":
            return 200, await self.engine.join(req)
        if path == "/v1/preauth":
            return 200, await self.engine.preauth(peer, req)
        if path == "/v1/account":
            return 200, await self.engine.account(peer, req)
        return 200, await self.engine.authenticate(peer, req)

    @staticmethod
    def _radius_answer(result: dict) -> tuple[int, dict]:
        """rlm_rest's language (docs/radius.md): 200 = accept (module "ok"), 401 with the
        refusal's Reply-Message = reject. Nothing of the login's answer (sessions, offline
        secrets, shares) leaves the server; values are not xlat-expanded by FreeRADIUS."""
        if result["status"] == "ok":
            return 200, {}
        return 401, {"reply:Reply-Message": {"value": [result["message"]], "do_xlat": False, "op": ":="}}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        conn = self._admit(writer)
        if conn is None:
            writer.transport.abort()
            return
        try:
            try:
                await writer.start_tls(self.ssl_ctx, ssl_handshake_timeout=self.handshake_timeout)
            except (TimeoutError, ConnectionError, ssl.SSLError, OSError):
                return
            peer = _peer(writer)
            if peer is not None:
                self._authenticated(conn)
            else:
                conn.anonymous = True  # only /v1/join and /v1/ping: evicted first
            await self._requests(reader, writer, peer)
        except asyncio.CancelledError:
            if not conn.evicted:
                raise  # not ours: the server is stopping
        finally:
            self._forget(conn)
            self.n_conns -= 1
            try:
                writer.close()
            except Exception:
                pass

    async def _read_head(self, reader, authenticated: bool) -> bytes:
        """The next request head: within ``head_timeout`` for a peer without a client
        certificate, within ``idle_timeout`` (keep-alive) for a joined host."""
        async with asyncio.timeout(self.idle_timeout if authenticated else self.head_timeout):
            return await reader.readuntil(b"\r\n\r\n")

    async def _requests(self, reader, writer, peer):
        try:
            while True:
                try:
                    head = await self._read_head(reader, peer is not None)
                except asyncio.LimitOverrunError:
                    writer.write(self._response(431, error_body("header_too_large", "request header too large"), False))
                    break
                try:
                    req = parse_head(head, self.max_body)
                except BadRequest as exc:
                    writer.write(self._response(exc.status, error_body(exc.code, str(exc)), False))
                    break
                if req.length:
                    try:
                        async with asyncio.timeout(self.body_timeout):
                            body = await reader.readexactly(req.length)
                    except TimeoutError:
                        log.info("body timeout path=%s", req.path[:64])
                        writer.write(self._response(408, error_body(
                            "timeout", f"request body not received within {self.body_timeout:g} s"), False))
                        break
                else:
                    body = b""
                try:
                    status, answer = await self.dispatch(req.method, req.path, body, peer)
                except BadRequest as exc:
                    status, answer = exc.status, error_body(exc.code, str(exc))
                    log.info("bad request path=%s code=%s", req.path[:64], exc.code)
                except ServerError as exc:
                    log.error("request failed path=%s: %s", req.path[:64], exc)
                    status, answer = 503, error_body("unavailable", "the server cannot answer now")
                except Exception:
                    # Never a traceback to the client; the log has the type, not the request.
                    log.exception("internal error path=%s", req.path[:64])
                    status, answer = 500, error_body("internal_error", "internal server error")
                writer.write(self._response(status, answer, req.keep_alive))
                await writer.drain()
                if not req.keep_alive:
                    break
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError, ssl.SSLError):
            pass

    async def serve(self, host: str, port: int, ready=None, reuse_port: bool = True):
        """Serve until cancelled; ``ready`` (an asyncio.Event) is set once listening.

        The schema must exist (``run`` creates it once, before starting workers).
        """
        # TLS is started by handle(), after the connection is counted (limits above).
        self.ssl_ctx = ssl_context(self.cfg.dir)
        server = await asyncio.start_server(self.handle, host, port, limit=MAX_HEADER,
                                            reuse_port=reuse_port, backlog=BACKLOG)
        self.port = server.sockets[0].getsockname()[1]
        log.info("serving realm=%s on %s:%d (pid %d, store %s, connections %d, "
                 "unauthenticated %d, per address %d)", self.cfg["realm"], host, self.port,
                 os.getpid(), self.store.dialect, self.limits["total"],
                 self.limits["unauthenticated"], self.limits["per_address"])
        if ready is not None:
            ready.set()
        try:
            async with server:
                await server.serve_forever()
        finally:
            self.store.close()


def run_process(cfg, host: str, port: int) -> None:
    """Run one server process until SIGTERM/SIGINT."""
    async def main():
        srv = Server(cfg)
        # Long-lived objects are frozen out of the collector and young collections are
        # rarer: fewer pauses in the latency tail.
        gc.collect()
        gc.freeze()
        gc.set_threshold(20000, 20, 20)
        task = asyncio.ensure_future(srv.serve(host, port))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            pass
    # asyncio's own loop: the connection limits start TLS on a counted connection
    # (StreamWriter.start_tls), which uvloop 0.19-0.21 does not complete.
    asyncio.run(main())
