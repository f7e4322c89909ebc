"""A remctl client (protocol version 2) over GSS-API, in process.

remctl (https://www.eyrie.org/~eagle/software/remctl/, draft-allbery-remctl) is
a command call over a TCP connection authenticated and encrypted with GSS-API
(Kerberos).  This module speaks the client side of protocol version 2, which
every remctld since 2.0 speaks (version 3 only adds NOOP for keep-alive
connections, which one call per connection does not need).

Why here and not the ``remctl`` binary or Debian's ``python3-pyremctl``: see
``docs/webauth.md``.  In short: the one-time code travels only inside a
GSS-wrapped token on our own socket (never in an argv), the client identity
comes from a keytab in process (``gss_acquire_cred_from`` with a private
``MEMORY:`` cache: no environment variable, no file, no global state), and the
dependency is PyPI ``gssapi``, which a venv can install.

Wire format (all integers big-endian)::

    token   = flags:1 length:4 payload:length
    flags   = TOKEN_NOOP 0x01 | CONTEXT 0x02 | DATA 0x04 | MIC 0x08 |
              CONTEXT_NEXT 0x10 | SEND_MIC 0x20 | PROTOCOL 0x40
    message = version:1 type:1 body        (inside gss_wrap with confidentiality)
    COMMAND = keepalive:1 continue:1 argc:4 (length:4 data)*argc
    OUTPUT  = stream:1 length:4 data       STATUS = status:1
    ERROR   = code:4 length:4 message      VERSION = highest:1

Only :func:`call` is public.  It raises :class:`RemctlError` (anything that
went wrong talking to the server: the caller maps it to UNAVAILABLE) or
:class:`RemctlTimeout` (a subclass).
"""

import socket
import struct
import time

TOKEN_NOOP = 0x01
TOKEN_CONTEXT = 0x02
TOKEN_DATA = 0x04
TOKEN_CONTEXT_NEXT = 0x10
TOKEN_PROTOCOL = 0x40

MESSAGE_COMMAND = 1
MESSAGE_QUIT = 2
MESSAGE_OUTPUT = 3
MESSAGE_STATUS = 4
MESSAGE_ERROR = 5
MESSAGE_VERSION = 6

PROTOCOL = 2
DEFAULT_PORTS = (4373, 4444)    # the registered port, then the legacy one (as remctl does)
MAX_TOKEN = 1024 * 1024          # remctl's own limit on a token
MAX_OUTPUT = 1024 * 1024         # more than any user-information reply needs

ERROR_NAMES = {1: "internal error", 2: "bad message format", 3: "unknown message type",
               4: "bad command", 5: "unknown command", 6: "access denied",
               7: "too many arguments", 8: "argument too long", 9: "unexpected message",
               10: "unknown service", 11: "command too long"}


class RemctlError(Exception):
    """The call did not produce a reply (connection, Kerberos, protocol, server error)."""


class RemctlTimeout(RemctlError):
    """No reply within the timeout."""


class RemctlMissing(RemctlError):
    """The GSS-API binding is not installed: a broken installation, not an unavailable service."""


class Result:
    """What the command printed and how it exited."""

    __slots__ = ("stdout", "stderr", "status")

    def __init__(self, stdout, stderr, status):
        self.stdout = stdout
        self.stderr = stderr
        self.status = status


def call(host, command, port=None, principal=None, keytab=None, timeout=30.0):
    """Run ``command`` (a list of str/bytes arguments) on ``host`` through remctld.

    :param port: ``None`` tries 4373, then 4444 when nothing listens there.
    :param principal: the server's principal; ``None`` is ``host@HOST`` as a
        GSS host-based service name (Kerberos makes it ``host/HOST@REALM``,
        canonicalising ``host`` as krb5.conf says: remctl's derivation).
    :param keytab: the client's keytab; its first principal is the client.
        ``None`` uses the default credentials (KRB5CCNAME).
    :param timeout: seconds for the whole call (connect, authenticate, reply).
    """
    try:
        import gssapi  # only when a call is made: the login path of other lines never loads it
    except ImportError as exc:
        raise RemctlMissing("the Python package gssapi cannot be imported (%s): install "
                            "otpme-auth-webauth's dependencies" % exc) from None

    deadline = time.monotonic() + timeout
    creds = _credentials(gssapi, keytab)
    target = _target_name(gssapi, host, principal)
    sock = _connect(host, port, deadline)
    try:
        ctx = _authenticate(gssapi, sock, target, creds, deadline)
        args = [a.encode("utf-8") if isinstance(a, str) else bytes(a) for a in command]
        body = struct.pack("!BBBBI", PROTOCOL, MESSAGE_COMMAND, 0, 0, len(args))
        body += b"".join(struct.pack("!I", len(a)) + a for a in args)
        _send(sock, TOKEN_DATA | TOKEN_PROTOCOL, _wrap(gssapi, ctx, body), deadline)
        return _read_reply(gssapi, sock, ctx, deadline)
    finally:
        sock.close()


def _credentials(gssapi, keytab):
    if keytab is None:
        return None
    import os
    # A private in-memory cache: the TGT obtained from the keytab lives only in
    # this process, only for this call (MIT krb5's credential store extension).
    store = {b"client_keytab": keytab.encode(),
             b"ccache": ("MEMORY:otpme-auth-webauth-%s" % os.urandom(8).hex()).encode()}
    try:
        return gssapi.Credentials(usage="initiate", store=store)
    except gssapi.exceptions.GSSError as exc:
        raise RemctlError("cannot use the keytab %s: %s" % (keytab, _gss_text(exc))) from None


def _target_name(gssapi, host, principal):
    try:
        if principal:
            return gssapi.Name(principal, gssapi.NameType.kerberos_principal)
        return gssapi.Name("host@%s" % host, gssapi.NameType.hostbased_service)
    except gssapi.exceptions.GSSError as exc:
        raise RemctlError("bad server principal %r: %s" % (principal or host, _gss_text(exc))) from None


def _connect(host, port, deadline):
    ports = DEFAULT_PORTS if port is None else (port,)
    last = None
    for number in ports:
        try:
            return socket.create_connection((host, number), timeout=_left(deadline))
        except socket.timeout:
            raise RemctlTimeout("timed out connecting to %s port %d" % (host, number)) from None
        except ConnectionRefusedError as exc:
            last = "%s port %d: %s" % (host, number, exc.strerror)
            continue     # only a refused port moves on to the next one, as remctl does
        except OSError as exc:
            raise RemctlError("cannot connect to %s port %d: %s" % (
                host, number, exc.strerror or exc)) from None
    raise RemctlError("cannot connect to %s" % last)


def _authenticate(gssapi, sock, target, creds, deadline):
    flags = (gssapi.RequirementFlag.mutual_authentication | gssapi.RequirementFlag.confidentiality
             | gssapi.RequirementFlag.integrity | gssapi.RequirementFlag.replay_detection
             | gssapi.RequirementFlag.out_of_sequence_detection)
    try:
        ctx = gssapi.SecurityContext(name=target, creds=creds, usage="initiate", flags=flags)
        _send(sock, TOKEN_NOOP | TOKEN_CONTEXT_NEXT | TOKEN_PROTOCOL, b"", deadline)
        token = ctx.step()
        while True:
            if token:
                _send(sock, TOKEN_CONTEXT | TOKEN_PROTOCOL, token, deadline)
            if ctx.complete:
                break
            flags_in, payload = _receive(sock, deadline)
            if not flags_in & TOKEN_CONTEXT:
                raise RemctlError("the server sent token flags 0x%02x during authentication" % flags_in)
            token = ctx.step(payload)
    except gssapi.exceptions.GSSError as exc:
        raise RemctlError("Kerberos authentication to the server failed: %s" % _gss_text(exc)) from None
    need = gssapi.RequirementFlag.confidentiality, gssapi.RequirementFlag.integrity
    if not all(f in ctx.actual_flags for f in need):
        raise RemctlError("the GSS-API context offers no confidentiality/integrity")
    return ctx


def _wrap(gssapi, ctx, data):
    try:
        wrapped = ctx.wrap(data, True)
    except gssapi.exceptions.GSSError as exc:
        raise RemctlError("cannot encrypt the command: %s" % _gss_text(exc)) from None
    if not wrapped.encrypted:
        raise RemctlError("the GSS-API context did not encrypt the command")
    return wrapped.message


def _read_reply(gssapi, sock, ctx, deadline):
    out = {1: [], 2: []}
    size = 0
    while True:
        flags, payload = _receive(sock, deadline)
        if flags != TOKEN_DATA | TOKEN_PROTOCOL:
            raise RemctlError("unexpected token flags 0x%02x from the server" % flags)
        try:
            message, encrypted, _ = ctx.unwrap(payload)
        except gssapi.exceptions.GSSError as exc:
            raise RemctlError("cannot decrypt the reply: %s" % _gss_text(exc)) from None
        if not encrypted:
            raise RemctlError("the server sent an unencrypted message")
        kind, value = decode_message(message)
        if kind == "status":
            return Result(b"".join(out[1]), b"".join(out[2]), value)
        stream, data = value
        size += len(data)
        if size > MAX_OUTPUT:
            raise RemctlError("the reply is larger than %d bytes" % MAX_OUTPUT)
        out[stream].append(data)


def decode_message(message):
    """One server message: ``("output", (stream, data))`` or ``("status", n)``.

    An ERROR message, a VERSION message (the server does not speak version 2),
    an unknown type or any malformed message raises :class:`RemctlError`.
    """
    if len(message) < 2:
        raise RemctlError("a reply message is too short")
    if message[0] not in (2, 3):
        raise RemctlError("a reply message of protocol version %d" % message[0])
    mtype = message[1]
    body = message[2:]
    if mtype == MESSAGE_OUTPUT:
        if len(body) < 5:
            raise RemctlError("a truncated output message")
        stream, length = struct.unpack("!BI", body[:5])
        data = body[5:]
        if length != len(data) or stream not in (1, 2):
            raise RemctlError("a malformed output message")
        return "output", (stream, bytes(data))
    if mtype == MESSAGE_STATUS:
        if len(body) != 1:
            raise RemctlError("a malformed status message")
        return "status", body[0]
    if mtype == MESSAGE_ERROR:
        if len(body) < 8:
            raise RemctlError("a truncated error message")
        code, length = struct.unpack("!II", body[:8])
        if length != len(body) - 8:
            raise RemctlError("a malformed error message")
        text = bytes(body[8:]).decode("utf-8", "replace")
        raise RemctlError("the server refused the command: %s (%s)" % (
            ERROR_NAMES.get(code, "error %d" % code), _printable(text)))
    if mtype == MESSAGE_VERSION:
        raise RemctlError("the server does not speak remctl protocol %d" % PROTOCOL)
    raise RemctlError("unknown message type %d from the server" % mtype)


def _send(sock, flags, payload, deadline):
    sock.settimeout(_left(deadline))
    try:
        sock.sendall(struct.pack("!BI", flags, len(payload)) + payload)
    except socket.timeout:
        raise RemctlTimeout("timed out sending to the server") from None
    except OSError as exc:
        raise RemctlError("cannot send to the server: %s" % (exc.strerror or exc)) from None


def _receive(sock, deadline):
    head = _read_exact(sock, 5, deadline)
    flags, length = struct.unpack("!BI", head)
    if length > MAX_TOKEN:
        raise RemctlError("the server sent a token of %d bytes" % length)
    return flags, _read_exact(sock, length, deadline)


def _read_exact(sock, count, deadline):
    chunks = []
    while count:
        sock.settimeout(_left(deadline))
        try:
            chunk = sock.recv(min(count, 65536))
        except socket.timeout:
            raise RemctlTimeout("no reply from the server in time") from None
        except OSError as exc:
            raise RemctlError("cannot read from the server: %s" % (exc.strerror or exc)) from None
        if not chunk:
            raise RemctlError("the server closed the connection")
        chunks.append(chunk)
        count -= len(chunk)
    return b"".join(chunks)


def _left(deadline):
    left = deadline - time.monotonic()
    if left <= 0:
        raise RemctlTimeout("no reply from the server in time")
    return left


def _gss_text(exc):
    return _printable(" ".join(str(exc).split()))


def _printable(text, limit=300):
    clean = "".join(c if c.isprintable() else "?" for c in text)
    return clean[:limit]
