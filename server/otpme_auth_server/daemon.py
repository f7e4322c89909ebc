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
import signal
import ssl

from . import PROTOCOL_VERSION
from .auth import Engine
from .crypto import Passwords, SecretBox
from .errors import BadRequest, ServerError
from .protocol import MAX_HEADER, error_body, parse_body, parse_head
from .store import Store

log = logging.getLogger("otpme_auth_server")

IDLE_TIMEOUT = 60  # seconds a keep-alive connection may stay idle
_REASON = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 411: "Length Required", 413: "Payload Too Large",
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


class Server:
    """One process's listener and its engine."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.store = Store(cfg.db)
        self.box = SecretBox.from_dir(cfg.dir)
        self.engine = Engine(cfg, self.store, self.box, Passwords(cfg["argon2"]))
        self.max_body = cfg["max_body"]

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
        if path not in ("/v1/preauth", "/v1/auth", "/v1/join"):
            raise BadRequest("not_found", "no such endpoint", 404)
        if method != "POST":
            raise BadRequest("method_not_allowed", "use POST", 405)
        req = parse_body(path, body)
        if path == "/v1/join":
            return 200, await self.engine.join(req)
        if path == "/v1/preauth":
            return 200, await self.engine.preauth(peer, req)
        return 200, await self.engine.authenticate(peer, req)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        peer = _peer(writer)
        try:
            while True:
                try:
                    async with asyncio.timeout(IDLE_TIMEOUT):
                        head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.LimitOverrunError:
                    writer.write(self._response(431, error_body("header_too_large", "request header too large"), False))
                    break
                try:
                    req = parse_head(head, self.max_body)
                except BadRequest as exc:
                    writer.write(self._response(exc.status, error_body(exc.code, str(exc)), False))
                    break
                body = await reader.readexactly(req.length) if req.length else b""
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
        finally:
            try:
                writer.close()
            except Exception:
                pass

    async def serve(self, host: str, port: int, ready=None, reuse_port: bool = True):
        """Serve until cancelled; ``ready`` (an asyncio.Event) is set once listening.

        The schema must exist (``run`` creates it once, before starting workers).
        """
        ctx = ssl_context(self.cfg.dir)
        server = await asyncio.start_server(self.handle, host, port, ssl=ctx, limit=MAX_HEADER,
                                            reuse_port=reuse_port, backlog=1024)
        self.port = server.sockets[0].getsockname()[1]
        log.info("serving realm=%s on %s:%d (pid %d, store %s)", self.cfg["realm"], host, self.port,
                 os.getpid(), self.store.dialect)
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
    try:
        # uvloop (optional) has a C TLS transport; asyncio's own is pure Python.
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())
