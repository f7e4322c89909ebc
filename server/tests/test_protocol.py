"""Bad requests get a clear error and change nothing; the parser is fuzzed."""

import json
import os
import socket
import ssl

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otpme_auth_server import config
from otpme_auth_server.errors import BadRequest
from otpme_auth_server.protocol import SCHEMAS, parse_body, parse_head
from otpme_auth_server.store import Store

from srvkit import Client, ServerProc, adm_ok, free_port, join, make_realm, shown_jotp

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=80),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10)


@given(st.binary(max_size=600))
def test_parse_head_only_badrequest(data):
    try:
        req = parse_head(data)
    except BadRequest as exc:
        assert exc.code and 400 <= exc.status < 500
    else:
        assert req.length <= 65536


@given(st.sampled_from(sorted(SCHEMAS)),
       st.dictionaries(st.sampled_from(["user", "password", "challenge_id", "response", "host",
                                        "jotp", "csr", "extra"]), json_values, max_size=5))
def test_parse_body_only_badrequest(path, obj):
    try:
        out = parse_body(path, json.dumps(obj).encode())
    except BadRequest as exc:
        assert exc.code and str(exc)
    else:
        assert set(out) == set(SCHEMAS[path])


@given(st.binary(max_size=300))
def test_parse_body_bytes(data):
    try:
        parse_body("/v1/auth", data)
    except BadRequest:
        pass


def snapshot(d):
    store = Store(config.load(d).db)
    with store.session() as c:
        return {t: sorted(map(tuple, c.all(f"SELECT * FROM {t}")))
                for t in ("meta", "objects", "otp_state", "fail_state", "sessions", "challenges", "joins")}


def tls_raw(port, ca, payload: bytes) -> bytes:
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with ctx.wrap_socket(s) as t:
            t.sendall(payload)
            out = b""
            while True:
                chunk = t.recv(65536)
                if not chunk:
                    return out
                out += chunk


def test_bad_requests_change_nothing(realm_dir, server, tmp_path):
    d = realm_dir
    ca = os.path.join(d, "ca.pem")
    jotp = shown_jotp(adm_ok(d, "host", "add", "h1"))
    adm_ok(d, "host", "add", "h9")
    adm_ok(d, "user", "add", "--no-login-token", "alice")
    adm_ok(d, "token", "add", "--type", "password", "alice/pw", "-", stdin="pw\n")
    h1 = join(server.port, d, "h1", jotp, str(tmp_path / "h1"))
    before = snapshot(d)

    def check(status, body, code, want_status):
        assert status == want_status, body
        assert body["status"] == "error" and body["error"] == code and body["message"]

    check(*h1.raw("POST", "/v1/auth", b"{not json"), "malformed_json", 400)
    check(*h1.raw("POST", "/v1/auth", b"\xff\xfe"), "malformed_json", 400)
    check(*h1.post("/v1/auth", {"user": 5, "password": "x"}), "wrong_type", 400)
    check(*h1.post("/v1/auth", {"user": "alice", "password": ["x"]}), "wrong_type", 400)
    check(*h1.post("/v1/auth", {"user": "alice"}), "missing_field", 400)
    check(*h1.post("/v1/auth", {"user": "alice", "password": "x", "admin": True}), "unknown_field", 400)
    check(*h1.post("/v1/auth", {"user": "../etc", "password": "x"}), "bad_user", 400)
    check(*h1.post("/v1/auth", {"user": "alice", "password": "x" * 5000}), "too_long", 400)
    check(*h1.raw("POST", "/v1/auth", b"[]"), "malformed_json", 400)
    check(*h1.raw("GET", "/v1/auth"), "method_not_allowed", 405)
    check(*h1.raw("POST", "/v2/auth", b"{}"), "not_found", 404)
    # The JOTP is checked before the CSR is parsed: a wrong one is refused as such.
    check(*h1.post("/v1/join", {"host": "h9", "jotp": "WRONG", "csr": "junk"}), "join_refused", 403)
    # Oversized body: refused from the header, before reading it.
    out = tls_raw(server.port, ca, b"POST /v1/auth HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 413") and b"body_too_large" in out
    out = tls_raw(server.port, ca, b"POST /v1/auth HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 411")
    out = tls_raw(server.port, ca, b"\x00\x01garbage\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400")
    out = tls_raw(server.port, ca, b"GET / HTTP/1.1\r\n" + b"X: " + b"a" * 20000 + b"\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 431")
    # Without a client certificate: only ping and join are open.
    anon = Client(server.port, ca)
    check(*anon.post("/v1/preauth", {"user": "alice"}), "client_certificate_required", 401)
    check(*anon.post("/v1/auth", {"user": "alice", "password": "pw"}), "client_certificate_required", 401)
    assert anon.raw("GET", "/v1/ping")[1]["realm"] == "example.org"
    assert snapshot(d) == before
    # The connection survives a bad request (keep-alive) and works afterwards.
    assert h1.auth("alice", "pw")[1]["status"] == "refused"  # not allowed on h1: a real answer


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode())),
       path=st.sampled_from(["/v1/auth", "/v1/preauth", "/v1/join"]))
def test_fuzz_live(live_host, body, path):
    h1, d, before = live_host
    status, answer = h1.raw("POST", path, body)
    assert status in (200, 400, 403, 404, 413), answer
    if status != 200:
        assert answer["status"] == "error" and answer["error"]
    elif path == "/v1/auth":
        assert answer["status"] == "refused"  # nobody has credentials here


@pytest.fixture(scope="module")
def live_host(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    port = free_port()
    d = make_realm(tmp, "sqlite", port)
    jotp = shown_jotp(adm_ok(d, "host", "add", "h1"))
    adm_ok(d, "accessgroup", "max_fail", "LOGIN", "0")
    srv = ServerProc(d, port)
    h1 = join(port, d, "h1", jotp, str(tmp / "h1"))
    yield h1, d, None
    h1.close()
    srv.stop()


def test_foreign_certificate_fails_handshake(realm_dir, server, tmp_path):
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "h1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    certf, keyf = tmp_path / "c.pem", tmp_path / "k.pem"
    certf.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyf.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    c = Client(server.port, os.path.join(realm_dir, "ca.pem"), "h1", str(certf), str(keyf))
    with pytest.raises((ssl.SSLError, ConnectionError)):
        c.preauth("alice")


def test_control_characters_in_path_are_refused():
    for head in (b"GET /v1/\x1b[31mping HTTP/1.1\r\n\r\n", b"GET /" + b"a" * 300 + b" HTTP/1.1\r\n\r\n"):
        with pytest.raises(BadRequest):
            parse_head(head)
