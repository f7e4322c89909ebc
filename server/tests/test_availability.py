"""Issue 8, points 8-10: a peer without a certificate cannot starve joined hosts,
joins cannot stall logins, and no bad input gives a 5xx."""

import json
import os
import resource
import socket
import ssl
import subprocess
import sys
import time

from srvkit import ServerProc, adm_ok, join, make_realm, shown_jotp, free_port

ATTACKER = r'''
import socket, ssl, sys, time
port, ca, n_tls, n_tcp, hold = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
ctx = ssl.create_default_context(cafile=ca); ctx.check_hostname = False
held = []
deadline = time.monotonic() + 60          # bounded in time as well as in count
for i in range(n_tls + n_tcp):
    if time.monotonic() > deadline:
        break
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        if i < n_tls:
            s = ctx.wrap_socket(s)
            s.sendall(b"POST /v1/auth HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        held.append(s)
    except OSError:
        pass
print("held", len(held), flush=True)
time.sleep(hold)
'''


def _limit_nofile():
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))


def test_host_served_while_attacker_holds_1100_stalled_connections(tmp_path):
    d = make_realm(tmp_path)
    adm_ok(d, "user", "add", "--no-login-token", "alice")
    adm_ok(d, "token", "add", "--type", "password", "alice/pw", "-", stdin="secret pw\n")
    jotp = shown_jotp(adm_ok(d, "host", "add", "h1"))
    adm_ok(d, "host", "add_token", "h1", "alice/pw")
    port = free_port()
    log = open(os.path.join(d, "soft1024.log"), "w+")
    srv = subprocess.Popen([sys.executable, "-m", "otpme_auth_server.cli", "run", "--dir", d,
                            "--listen", f"127.0.0.1:{port}", "--log-level", "INFO"],
                           stdout=log, stderr=subprocess.STDOUT, preexec_fn=_limit_nofile)
    attacker = None
    try:
        from otpme_auth.testing.procs import wait_for_port
        assert wait_for_port(srv, port)
        h1 = join(port, d, "h1", jotp, str(tmp_path / "h1"))
        attacker = subprocess.Popen([sys.executable, "-c", ATTACKER, str(port), os.path.join(d, "ca.pem"),
                                     "600", "500", "120"], stdout=subprocess.PIPE, text=True,
                                    preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096)))
        assert attacker.stdout.readline().startswith("held")
        # The attacker holds its sockets: a real login through the protocol still works.
        h1.close()
        assert h1.preauth("alice")[0] == 200
        status, body = h1.auth("alice", "secret pw")
        assert (status, body["status"]) == (200, "ok"), body
        h1.close()
        assert srv.poll() is None
        log.flush()
        text = open(log.name).read()
        assert "Too many open files" not in text and "Traceback" not in text, text[-2000:]
    finally:
        if attacker is not None:
            attacker.kill()
            attacker.wait()
        srv.terminate()
        srv.wait(30)
        log.close()


def test_stalled_body_is_closed_after_body_timeout(tmp_path):
    d = make_realm(tmp_path)
    path = os.path.join(d, "server.json")
    cfg = json.load(open(path))
    cfg["body_timeout"] = 1
    json.dump(cfg, open(path, "w"))
    port = int(cfg["listen"].rsplit(":", 1)[1])
    s = ServerProc(d, port)
    try:
        ctx = ssl.create_default_context(cafile=os.path.join(d, "ca.pem"))
        ctx.check_hostname = False
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=30)) as t:
            t.sendall(b"POST /v1/auth HTTP/1.1\r\nContent-Length: 1000\r\n\r\n{")
            out = b""
            while chunk := t.recv(65536):
                out += chunk
        assert out.startswith(b"HTTP/1.1 408") and b'"timeout"' in out, out
    finally:
        s.stop()


# -- point 9/10: joins and bad input -------------------------------------------------------

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402
from hypothesis import given, settings, HealthCheck, strategies as st  # noqa: E402

from srvkit import Client  # noqa: E402


def _csr(key):
    return (x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]))
            .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode())


def test_join_checks_jotp_first_and_limits_keys(realm_dir, server, tmp_path):
    d = realm_dir
    big = _csr(rsa.generate_private_key(65537, 4608))  # made before: the connection would idle out
    jotp = shown_jotp(adm_ok(d, "host", "add", "h2"))
    anon = Client(server.port, os.path.join(d, "ca.pem"))
    # A wrong JOTP is refused without parsing the CSR (junk CSR: still join_refused).
    for _ in range(40):
        status, body = anon.post("/v1/join", {"host": "h2", "jotp": "WRONG", "csr": "junk"})
        assert (status, body["error"]) == (403, "join_refused")
    # An oversize RSA key is a clear 400, and the JOTP stays usable.
    status, body = anon.post("/v1/join", {"host": "h2", "jotp": jotp, "csr": big})
    assert (status, body["error"]) == (400, "bad_csr") and "4096" in body["message"]
    status, body = anon.post("/v1/join", {"host": "h2", "jotp": jotp,
                                          "csr": _csr(ec.generate_private_key(ec.SECP256K1()))})
    assert (status, body["error"]) == (400, "bad_csr")
    status, body = anon.post("/v1/join", {"host": "h2", "jotp": jotp, "csr": _csr(ec.generate_private_key(ec.SECP256R1()))})
    assert status == 200, body
    anon.close()


def test_lone_surrogate_password_is_a_counted_failure(realm_dir, server, tmp_path):
    d = realm_dir
    adm_ok(d, "accessgroup", "max_fail", "LOGIN", "3")
    adm_ok(d, "user", "add", "--no-login-token", "alice")
    adm_ok(d, "token", "add", "--type", "password", "alice/pw", "-", stdin="right\n")
    jotp = shown_jotp(adm_ok(d, "host", "add", "h1"))
    adm_ok(d, "host", "add_token", "h1", "alice/pw")
    h1 = join(server.port, d, "h1", jotp, str(tmp_path / "h1"))
    bad = b'{"user": "alice", "password": "x\\ud800"}'
    for _ in range(3):
        status, body = h1.raw("POST", "/v1/auth", bad)
        assert (status, body["reason"]) == (200, "wrong_credentials"), body
    status, body = h1.auth("alice", "right")
    assert (status, body["reason"]) == (200, "blocked"), body  # the 3 surrogate tries counted
    # A join with a surrogate JOTP: a refusal, not a 500.
    status, body = h1.raw("POST", "/v1/join", b'{"host": "h9", "jotp": "\\udc80", "csr": "x"}')
    assert status == 403, body


JUNK = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                 st.text(max_size=50), st.text(max_size=5000),
                 st.sampled_from(["\ud800", "a\udfff", "\x00", "é" * 2000]),
                 st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))
FIELDS = {"/v1/preauth": ["user", "offline_used"], "/v1/auth": ["user", "password", "challenge_id", "response"],
          "/v1/join": ["host", "jotp", "csr"], "/v1/ping": [], "/v1/account": ["user"]}


def test_fuzz_every_endpoint_never_5xx(realm_dir, server, tmp_path):
    d = realm_dir
    jotp = shown_jotp(adm_ok(d, "host", "add", "h1"))
    h1 = join(server.port, d, "h1", jotp, str(tmp_path / "h1"))
    anon = Client(server.port, os.path.join(d, "ca.pem"))

    @settings(max_examples=150, suppress_health_check=list(HealthCheck), deadline=None)
    @given(path=st.sampled_from(sorted(FIELDS)), who=st.booleans(), data=st.data(),
           raw=st.one_of(st.none(), st.binary(max_size=200)),
           ctype=st.sampled_from(["application/json", "text/plain", "", "\u00e9"]))
    def one(path, who, data, raw, ctype):
        names = FIELDS[path] + ["extra"]
        obj = data.draw(st.dictionaries(st.sampled_from(names), JUNK, max_size=5))
        body = raw if raw is not None else json.dumps(obj).encode()  # lone surrogates as \ud800
        c = h1 if who else anon
        headers = {"Content-Type": ctype.encode("latin-1").decode("latin-1")} if ctype else {}
        try:
            status, _ = c.raw("POST" if path != "/v1/ping" else "GET", path, body, headers)
        except Exception:
            c.close()
            status, _ = c.raw("GET", "/v1/ping")
        assert status < 500
    one()
    assert "internal error" not in server.logtext()


TEXT = st.text(max_size=60) | st.sampled_from(["\ud800", "a\udfff", "\x00", "123456", "right pw",
                                                 "right pw\ud800", "bob/totp", "bob/hotp"])
SCALAR = st.none() | st.booleans() | st.integers(min_value=-2 ** 70, max_value=2 ** 70) \
    | st.floats() | TEXT
USED = st.lists(SCALAR | st.dictionaries(st.sampled_from(["token", "counter", "x"]), SCALAR,
                                          max_size=3), max_size=5)


def test_fuzz_a_known_users_fields_never_5xx(realm_dir, server, tmp_path):
    """Point 10 for a user who exists, with a password, a TOTP second factor with a PIN, a
    HOTP token and offline on: every field of pre-auth (offline_used included), auth and
    account, with lone surrogates, NULs, huge numbers, wrong types.  Never a 5xx: a host
    reads a 5xx as "server down" and lets its offline cache stand in."""
    d = realm_dir
    jotp = shown_jotp(adm_ok(d, "host", "add", "h1"))
    adm_ok(d, "host", "unlimit_logins", "h1")
    adm_ok(d, "accessgroup", "max_fail", "LOGIN", "0")
    adm_ok(d, "user", "add", "--no-login-token", "bob")
    adm_ok(d, "token", "add", "--type", "password", "bob/pw", "-", stdin="right pw\n")
    adm_ok(d, "token", "add", "--type", "totp", "bob/totp")
    adm_ok(d, "token", "add", "--type", "hotp", "--no-pin", "bob/hotp")
    adm_ok(d, "token", "2f_token", "bob/pw", "bob/totp")
    adm_ok(d, "token", "enable_2f", "bob/pw")
    adm_ok(d, "token", "enable_offline", "bob/pw")
    h1 = join(server.port, d, "h1", jotp, str(tmp_path / "h1"))

    @settings(max_examples=200, suppress_health_check=list(HealthCheck), deadline=None)
    @given(path=st.sampled_from(["/v1/auth", "/v1/preauth", "/v1/account"]),
           user=st.sampled_from(["bob", "bob", "nobody"]) | TEXT, password=st.none() | TEXT,
           cid=st.none() | TEXT, resp=st.none() | TEXT, used=st.none() | USED)
    def one(path, user, password, cid, resp, used):
        body = {"user": user}
        if path == "/v1/auth":
            body.update({k: v for k, v in (("password", password), ("challenge_id", cid),
                                           ("response", resp)) if v is not None})
        elif path == "/v1/preauth" and used is not None:
            body["offline_used"] = used
        status, answer = h1.raw("POST", path, json.dumps(body).encode())
        assert status < 500, (status, answer)
    one()
    h1.close()
    assert "internal error" not in server.logtext()
