"""The host's side of the protocol (docs/protocol.md): HTTPS + JSON, mutual TLS.

A deliberately small HTTP/1.1 client for one server we know: ``http.client``
pulls in the ``email`` package (~20 ms of import on the login path) for
features this protocol excludes (chunked bodies, header folding, 1xx).  What
we speak: one request at a time on a kept-alive TLS connection,
``Content-Length`` framing both ways, bounded head and body sizes.

Timeouts (seed 000): ``connect_timeout`` bounds TCP connect plus the TLS
handshake, per server; ``connection_timeout`` bounds waiting for each answer.
Servers are tried in order; the first that completes a handshake is used for
the whole login.

Two kinds of failure, and the difference decides whether offline may stand in
(issue 8): :class:`Unreachable` is "no answer in time": no connection, a TLS
handshake that failed (the peer never answered as the realm's server), a
timeout, the connection closed or reset before the answer was complete.
:class:`BadAnswer` is an answer from the realm's server (it completed the
pinned TLS handshake) that we cannot use: not HTTP, not JSON, too large, or a
TLS alert the server sent (it refused our certificate, e.g. one it no longer
accepts; with TLS 1.3 it comes while the request is written, so a failed write
first reads the alert that waits).  The
plugin treats it as a refusal: the server spoke.  A well-formed refusal (any
HTTP status) is not an error here.

``ssl`` is imported, and the TLS context built, only once a TCP connection
stands: when every server is down (the laptop on the train) the login goes
to the offline cache without paying ~25 ms for TLS it will not use.
"""

import os
import socket

MAX_HEAD = 16 * 1024
MAX_BODY = 1024 * 1024
_CLOSED = "the server closed the connection"


class Unreachable(Exception):
    """No server could be reached, or none answered in time (never a refusal)."""


class BadAnswer(Exception):
    """The server answered, but not in a form we can use: treated as a refusal."""


class LocalError(Unreachable):
    """This host cannot use its own files (the host key is 0600 root and this process is
    not root): a local problem, never to be reported as an unreachable server."""


class Client:
    """One login's connection to the first reachable server of ``servers``."""

    def __init__(self, servers, ca_file, cert_file, key_file, connect_timeout, connection_timeout):
        self.servers = list(servers)
        self.ca_file = ca_file
        self.cert_file = cert_file
        self.key_file = key_file
        self.connect_timeout = connect_timeout
        self.connection_timeout = connection_timeout
        self.sock = None
        self.server = None
        self._buffer = b""
        self._answered = 0      # answers read on this connection
        self._received = False  # any byte of the current answer read

    def _context(self):
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies certificate and host name
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_verify_locations(cafile=self.ca_file)  # the realm CA only: pinned
        if self.cert_file:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx

    def connect(self):
        """Connect to the first server that answers within connect_timeout."""
        ctx = None
        errors = []
        for server in self.servers:
            host, port = split_server(server)
            try:
                raw = socket.create_connection((host, port), timeout=self.connect_timeout)
            except OSError as exc:
                errors.append("%s: %s" % (server, _reason(exc)))
                continue
            if ctx is None:
                try:
                    ctx = self._context()
                except PermissionError as exc:
                    raw.close()
                    raise LocalError(
                        "local permission error, not the server: uid %d cannot read the host's "
                        "TLS files (%s: %s); a process that is not root logs in through the "
                        "otpme-auth helper" % (os.geteuid(), exc.filename or self.key_file,
                                               exc.strerror)) from None
                except OSError as exc:  # ssl.SSLError is an OSError
                    raw.close()
                    raise Unreachable("cannot load the host's TLS files: %s" % _reason(exc)) from None
            try:
                sock = ctx.wrap_socket(raw, server_hostname=host)
                sock.settimeout(self.connection_timeout)
            except OSError as exc:
                raw.close()
                if _is_alert(exc):   # the server answered the handshake: it refuses us
                    raise BadAnswer("%s refused the TLS handshake: %s" % (server, _reason(exc))) \
                        from None
                errors.append("%s: %s" % (server, _reason(exc)))
                continue
            self.sock, self.server, self._buffer = sock, server, b""
            self._answered = 0
            return server
        raise Unreachable("no server reachable (%s)" % "; ".join(errors) if errors
                          else "no server configured")

    def request(self, path, body):
        """POST ``body`` (a dict) to ``path``; returns ``(status, answer_dict)``."""
        import json
        if self.sock is None:
            self.connect()
        payload = json.dumps(body, separators=(",", ":")).encode()
        try:
            try:
                status, data = self._exchange(path, payload)
            except OSError as exc:
                if not self._stale(exc):
                    raise
                # The server closed the kept-alive connection while it was idle (the
                # user took a while to type): it never saw this request.  Once, anew.
                self.close()
                self.connect()
                status, data = self._exchange(path, payload)
        except _Malformed as exc:
            self.close()
            raise BadAnswer("%s: %s" % (self.server, exc)) from None
        except OSError as exc:  # ssl.SSLError is an OSError
            self.close()
            if _is_alert(exc):
                raise BadAnswer("%s refused the connection: %s" % (self.server, _reason(exc))) \
                    from None
            raise Unreachable("%s: %s" % (self.server, _reason(exc))) from None
        try:
            answer = json.loads(data)
        except ValueError:
            self.close()
            raise BadAnswer("%s sent an answer that is not JSON" % self.server) from None
        if not isinstance(answer, dict):
            self.close()
            raise BadAnswer("%s sent an answer that is not a JSON object" % self.server)
        return status, answer

    def _exchange(self, path, payload):
        head = ("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                "Content-Length: %d\r\n\r\n" % (path, split_server(self.server)[0], len(payload)))
        self._received = False
        try:
            self.sock.sendall(head.encode("ascii") + payload)
        except OSError as exc:
            alert = None if isinstance(exc, socket.timeout) else self._waiting_alert()
            if alert is not None:
                raise alert from None
            raise
        status, length, close = self._read_head()
        data = self._read_exactly(length)
        self._answered += 1
        if close:   # "Connection: close": the next request connects again
            self.close()
        return status, data

    def _waiting_alert(self):
        """After a send that failed: the TLS alert the server sent before it closed, if
        one waits to be read, else None.  TLS 1.3 checks the client's certificate after
        the client's handshake is done: a server that refuses it sends its alert and
        closes while the request is being written, and the write fails (EOF, EPIPE)
        with the refusal still unread (issue 8: a refusal, not an unreachable server)."""
        try:
            self.sock.recv(1)
        except OSError as exc:
            return exc if _is_alert(exc) else None
        return None

    def _stale(self, exc):
        """True if ``exc`` is a kept-alive connection the server had closed: it answered
        on it before, and closed or reset it before sending any byte of this answer."""
        import errno
        import ssl
        if self._answered == 0 or self._received or _is_alert(exc):
            return False
        return (str(exc) == _CLOSED
                or isinstance(exc, (BrokenPipeError, ConnectionResetError, ssl.SSLEOFError,
                                    ssl.SSLZeroReturnError))
                or getattr(exc, "errno", None) in (errno.EPIPE, errno.ECONNRESET))

    def _read_head(self):
        while b"\r\n\r\n" not in self._buffer:
            if len(self._buffer) > MAX_HEAD:
                raise _Malformed("answer head too large")
            self._fill()
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise _Malformed("not an HTTP answer")
        length, close = None, False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length" and value.strip().isdigit():
                length = int(value.strip())
            elif name.strip().lower() == "connection" and value.strip().lower() == "close":
                close = True
            elif name.strip().lower() == "transfer-encoding":
                raise _Malformed("unexpected Transfer-Encoding")
        if length is None or length > MAX_BODY:
            raise _Malformed("answer without a usable Content-Length")
        return int(parts[1]), length, close

    def _read_exactly(self, length):
        while len(self._buffer) < length:
            self._fill()
        data, self._buffer = self._buffer[:length], self._buffer[length:]
        return data

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise OSError(_CLOSED)
        self._received = True
        self._buffer += chunk

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None


class _Malformed(Exception):
    """The bytes the server sent are not an answer of this protocol."""


def _is_alert(exc):
    """A TLS alert the server sent after the handshake (e.g. it refused our certificate)."""
    import ssl
    return isinstance(exc, ssl.SSLError) and "ALERT" in str(getattr(exc, "reason", "") or "").upper()


def split_server(server):
    """``host:port`` (``[v6]:port``) -> (host, port); the port defaults to 8443."""
    if server.startswith("["):
        host, _, rest = server[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else "8443"
    else:
        host, _, port = server.rpartition(":") if ":" in server else (server, "", "8443")
    if not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise ValueError("server %r is not host:port" % server)
    return host, int(port)


def _reason(exc):
    if isinstance(exc, socket.timeout):
        return "timed out"
    if getattr(exc, "verify_message", None):  # ssl.SSLCertVerificationError
        return "certificate not trusted (%s)" % exc.verify_message
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
