"""The remctl client against a real remctld, and against a misbehaving server that
authenticates for real (a GSS-API acceptor with the service keytab) and then answers wrong.
Every misbehaviour is a RemctlError (the plugin's UNAVAILABLE), never a crash or a hang.
"""

import os
import socket
import struct
import sys
import threading

import pytest
from hypothesis import given, settings, strategies as st

from otpme_auth_webauth import remctl

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from webauth_realm import REALM, realm_fixture  # noqa: E402

DATA = remctl.TOKEN_DATA | remctl.TOKEN_PROTOCOL


@pytest.fixture(scope="module")
def realm(tmp_path_factory):
    r = realm_fixture(tmp_path_factory)
    r.service_log = os.path.join(r.dir, "service.log")
    r.port = r.remctld(r.service_log)
    yield r
    r.stop()


@pytest.fixture
def krb5(realm, monkeypatch):
    monkeypatch.setenv("KRB5_CONFIG", realm.krb5_conf)
    return realm


def test_call_through_remctld(krb5):
    result = remctl.call("localhost", ["webauth", "webkdc-validate", "alice", "127.0.0.1", "314159"],
                         port=krb5.port, keytab=krb5.client_keytab, timeout=10)
    assert result.status == 0 and b"<success>yes</success>" in result.stdout
    refused = remctl.call("localhost", ["webauth", "webkdc-validate", "broken", "127.0.0.1", "1"],
                          port=krb5.port, keytab=krb5.client_keytab, timeout=10)
    assert refused.status == 1 and refused.stderr == b"OTP database unreachable\n"


def test_explicit_principal(krb5):
    result = remctl.call("localhost", ["webauth", "webkdc-validate", "alice", "127.0.0.1", "314159"],
                         port=krb5.port, keytab=krb5.client_keytab,
                         principal="host/localhost@%s" % REALM, timeout=10)
    assert result.status == 0


def test_an_acl_that_refuses_the_client(krb5):
    port = krb5.remctld(krb5.service_log, acl="princ:nobody@%s" % REALM)
    with pytest.raises(remctl.RemctlError, match="access denied"):
        remctl.call("localhost", ["webauth", "webkdc-validate", "a", "b", "c"], port=port,
                    keytab=krb5.client_keytab, timeout=10)


def _read(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def _token(conn):
    flags, length = struct.unpack("!BI", _read(conn, 5))
    return flags, _read(conn, length)


def _send(conn, flags, payload):
    conn.sendall(struct.pack("!BI", flags, len(payload)) + payload)


@pytest.fixture
def hostile(krb5):
    """hostile(behaviour) -> port of a server that authenticates, reads the command, then misbehaves."""
    import gssapi
    servers = []

    def start(behaviour):
        creds = gssapi.Credentials(usage="accept", store={b"keytab": krb5.server_keytab.encode()})
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        servers.append(srv)

        def serve():
            conn, _ = srv.accept()
            with conn:
                try:
                    flags, _ = _token(conn)
                    assert flags & remctl.TOKEN_CONTEXT_NEXT
                    ctx = gssapi.SecurityContext(creds=creds, usage="accept")
                    while not ctx.complete:
                        _, tok = _token(conn)
                        out = ctx.step(tok)
                        if out:
                            _send(conn, remctl.TOKEN_CONTEXT | remctl.TOKEN_PROTOCOL, out)
                    _, payload = _token(conn)
                    ctx.unwrap(payload)
                    behaviour(conn, ctx)
                except (EOFError, OSError):
                    pass
        threading.Thread(target=serve, daemon=True).start()
        return srv.getsockname()[1]
    yield start
    for srv in servers:
        srv.close()


def wrapped(ctx, message):
    return ctx.wrap(message, True).message


BEHAVIOURS = {
    "version": (lambda c, x: _send(c, DATA, wrapped(x, bytes([2, remctl.MESSAGE_VERSION, 2]))),
                "does not speak remctl protocol 2"),
    "error": (lambda c, x: _send(c, DATA, wrapped(x, struct.pack("!BBII", 2, 5, 6, 13) + b"Access denied")),
              "access denied"),
    "unencrypted": (lambda c, x: _send(c, DATA, x.wrap(bytes([2, 4, 0]), False).message),
                    "unencrypted"),
    "huge token": (lambda c, x: c.sendall(struct.pack("!BI", DATA, 2 ** 31)), "a token of"),
    "closes": (lambda c, x: None, "closed the connection"),
    "bad flags": (lambda c, x: _send(c, remctl.TOKEN_DATA, wrapped(x, bytes([2, 4, 0]))),
                  "unexpected token flags"),
    "not wrapped": (lambda c, x: _send(c, DATA, b"\x02\x04\x00"), "cannot decrypt"),
    "unknown type": (lambda c, x: _send(c, DATA, wrapped(x, bytes([2, 99]))), "unknown message type 99"),
    "flood": (lambda c, x: [_send(c, DATA, wrapped(x, struct.pack("!BBBI", 2, 3, 1, 65536) + b"x" * 65536))
                            for _ in range(17)], "larger than"),
}


@pytest.mark.parametrize("name", sorted(BEHAVIOURS))
def test_misbehaving_server(hostile, krb5, name):
    behaviour, why = BEHAVIOURS[name]
    port = hostile(behaviour)
    with pytest.raises(remctl.RemctlError) as info:
        remctl.call("localhost", ["webauth", "webkdc-validate", "a", "b", "c"], port=port,
                    keytab=krb5.client_keytab, timeout=10)
    assert why in str(info.value)


def test_silent_server_times_out(hostile, krb5):
    done = threading.Event()
    port = hostile(lambda c, x: done.wait(10))
    try:
        with pytest.raises(remctl.RemctlTimeout):
            remctl.call("localhost", ["webauth", "webkdc-validate", "a", "b", "c"], port=port,
                        keytab=krb5.client_keytab, timeout=1)
    finally:
        done.set()


def test_a_well_behaved_fake_gives_the_output(hostile, krb5):
    def answer(c, x):
        _send(c, DATA, wrapped(x, struct.pack("!BBBI", 3, 3, 1, 3) + b"out"))
        _send(c, DATA, wrapped(x, struct.pack("!BBBI", 3, 3, 2, 3) + b"err"))
        _send(c, DATA, wrapped(x, bytes([3, 4, 7])))
    result = remctl.call("localhost", ["x"], port=hostile(answer), keytab=krb5.client_keytab, timeout=10)
    assert (result.stdout, result.stderr, result.status) == (b"out", b"err", 7)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64))
def test_fuzz_decode_message(data):
    try:
        kind, value = remctl.decode_message(data)
    except remctl.RemctlError:
        return
    assert kind in ("output", "status")


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([2, 3]), st.sampled_from([3, 4, 5, 6, 7]), st.binary(max_size=40))
def test_fuzz_decode_message_typed(version, mtype, body):
    try:
        remctl.decode_message(bytes([version, mtype]) + body)
    except remctl.RemctlError:
        pass
