"""Helpers for the server tests: realm directories on SQLite or a real PostgreSQL,
running server processes on loopback, and a minimal protocol client over mutual TLS.

(A uniquely named module, not conftest, so that test files can import it without
clashing with other conftest modules of the repository.)"""

import base64
import contextlib
import http.client
import io
import json
import os
import pwd
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from otpme_auth_server import admin, cli
from otpme_auth.testing import skip_or_fail
from otpme_auth.testing.procs import stop_process, wait_for_port

PG_BIN = "/usr/lib/postgresql/15/bin"
# Cheap argon2 for tests; the documented production cost is in docs/server.md.
TEST_ARGON2 = {"time_cost": 1, "memory_cost": 8192, "parallelism": 1}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgCluster:
    """A throwaway PostgreSQL cluster in a temp dir, run as user nobody."""

    def __init__(self):
        self.base = tempfile.mkdtemp(prefix="otpme-pg-")
        os.chmod(self.base, 0o755)
        self.data = os.path.join(self.base, "data")
        self.port = free_port()
        self.user = "nobody"
        os.makedirs(self.data)
        pw = pwd.getpwnam(self.user)
        os.chown(self.data, pw.pw_uid, pw.pw_gid)
        os.chmod(self.data, 0o700)

    def _run(self, *cmd):
        prefix = ["runuser", "-u", self.user, "--"] if os.geteuid() == 0 else []
        subprocess.run(prefix + list(cmd), check=True, capture_output=True, cwd="/")

    def start(self):
        self._run(f"{PG_BIN}/initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self._run(f"{PG_BIN}/pg_ctl", "-D", self.data, "-w", "-l", os.path.join(self.data, "log"),
                  "-o", f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 "
                        "-c fsync=off -c max_connections=200", "start")

    def stop(self):
        with contextlib.suppress(Exception):
            self._run(f"{PG_BIN}/pg_ctl", "-D", self.data, "-m", "immediate", "stop")
        shutil.rmtree(self.base, ignore_errors=True)

    def dsn(self, db="postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def new_db(self) -> str:
        import psycopg
        name = f"t{os.urandom(6).hex()}"
        with psycopg.connect(self.dsn(), autocommit=True) as c:
            c.execute(f"CREATE DATABASE {name}")
        return self.dsn(name)


def make_realm(tmp_path, db="sqlite", port=None) -> str:
    d = str(tmp_path / "srv")
    port = port or free_port()
    assert cli.main(["init", "--dir", d, "--realm", "example.org", "--site", "berlin",
                     "--listen", f"127.0.0.1:{port}", "--db", db]) == 0
    path = os.path.join(d, "server.json")
    with open(path) as f:
        cfg = json.load(f)
    cfg["argon2"] = TEST_ARGON2
    with open(path, "w") as f:
        json.dump(cfg, f)
    return d


def adm(directory, *args, stdin=None):
    """Run otpme-auth-admin in-process; returns (exit code, stdout)."""
    out = io.StringIO()
    old = sys.stdin
    if stdin is not None:
        sys.stdin = io.StringIO(stdin)
    try:
        rc = admin.main(["--dir", directory, *args], out=out)
    finally:
        sys.stdin = old
    return rc, out.getvalue()


def adm_ok(directory, *args, stdin=None) -> str:
    rc, out = adm(directory, *args, stdin=stdin)
    assert rc == 0, (args, out)
    return out


def shown_secret(out: str) -> str:
    return re.search(r"secret \(shown once\): (\S+)", out).group(1)


def shown_pin(out: str) -> str:
    return re.search(r"PIN \(shown once\): (\d+)", out).group(1)


def shown_jotp(out: str) -> str:
    return re.search(r"join one-time password.*\(shown once\): (\S+)", out).group(1)


class ServerProc:
    """``otpme-auth-server run`` in a subprocess."""

    def __init__(self, directory, port, workers=1):
        self.port = port
        self.log = open(os.path.join(directory, f"server-{port}.log"), "w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "otpme_auth_server.cli", "run", "--dir", directory,
             "--listen", f"127.0.0.1:{port}", "--workers", str(workers), "--log-level", "INFO"],
            stdout=self.log, stderr=subprocess.STDOUT)
        if wait_for_port(self.proc, port):
            return
        self.stop()
        raise RuntimeError("server did not start: " + self.logtext())

    def logtext(self) -> str:
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def stop(self):
        stop_process(self.proc)
        self.log.close()


class Client:
    """A host of the realm speaking the protocol (what the online plugin will do)."""

    def __init__(self, port, ca_pem, name=None, cert=None, key=None):
        self.port = port
        self.ca_pem = ca_pem
        self.name = name
        self.ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_pem)
        self.ctx.check_hostname = False  # connecting by IP; the chain is still pinned to the CA
        if cert:
            self.ctx.load_cert_chain(cert, key)
        self.conn = None

    def _conn(self):
        if self.conn is None:
            self.conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=30)
        return self.conn

    def raw(self, method, path, body: bytes = b"", headers=None):
        c = self._conn()
        try:
            c.request(method, path, body=body, headers=headers or {"Content-Type": "application/json"})
            r = c.getresponse()
            data = r.read()
        except (http.client.HTTPException, OSError):
            self.close()
            raise
        if r.getheader("Connection") == "close":
            self.close()
        return r.status, json.loads(data) if data else None

    def post(self, path, obj):
        return self.raw("POST", path, json.dumps(obj).encode())

    def preauth(self, user):
        return self.post("/v1/preauth", {"user": user})

    def auth(self, user, password=None, **kw):
        body = {"user": user, **kw}
        if password is not None:
            body["password"] = password
        return self.post("/v1/auth", body)

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def join(port, realm_dir, name, jotp, workdir) -> Client:
    """Join host ``name`` with ``jotp``; returns a Client holding its certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
           .sign(key, hashes.SHA256()))
    anon = Client(port, os.path.join(realm_dir, "ca.pem"))
    status, body = anon.post("/v1/join", {"host": name, "jotp": jotp,
                                          "csr": csr.public_bytes(serialization.Encoding.PEM).decode()})
    anon.close()
    assert status == 200, body
    os.makedirs(workdir, exist_ok=True)
    cert = os.path.join(workdir, f"{name}.pem")
    keyf = os.path.join(workdir, f"{name}.key")
    ca = os.path.join(workdir, "pinned-ca.pem")
    with open(cert, "w") as f:
        f.write(body["certificate"])
    with open(keyf, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(ca, "w") as f:
        f.write(body["ca_certificate"])
    return Client(port, ca, name, cert, keyf)


def b32(secret: str) -> bytes:
    return base64.b32decode(secret + "=" * (-len(secret) % 8))


def race(clients, calls):
    """Run ``calls[i](clients[i])`` in parallel threads released at once; their results.

    Each client opens its TLS connection first (a pre-auth), so the race is the requests.
    """
    import threading
    barrier = threading.Barrier(len(clients), timeout=60)  # a client that fails breaks it
    results = [None] * len(clients)

    def one(i):
        clients[i].preauth("nobody")
        barrier.wait()
        results[i] = calls[i](clients[i])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def host_clients(n, ports, first, workdir, name):
    """``n`` protocol clients of one joined host, spread over the servers' ``ports``."""
    return [Client(ports[i % len(ports)], first.ca_pem, name, os.path.join(workdir, f"{name}.pem"),
                   os.path.join(workdir, f"{name}.key")) for i in range(n)]


# -- FreeRADIUS from otpme-auth-server radius-config (test_radius*.py) ---------------------

def need_tools(*tools):
    for t in tools:
        if shutil.which(t) is None:
            skip_or_fail(f"{t} not found (Debian packages freeradius freeradius-utils "
                         "freeradius-rest eapoltest)")


def _wait_udp_ready(log_path, proc, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        with open(log_path) as f:
            if "Ready to process requests" in f.read():
                return True
        time.sleep(0.1)
    return False


class Radius:
    """The realm's server (``workers`` processes) and FreeRADIUS from radius-config."""

    def __init__(self, realm_dir, workdir, workers=1, start_server=True):
        need_tools("freeradius", "radtest", "radclient")
        self.realm_dir = realm_dir
        self.work = str(workdir)
        os.makedirs(self.work, exist_ok=True)
        with open(os.path.join(realm_dir, "server.json")) as f:
            self.server_port = int(json.load(f)["listen"].rsplit(":", 1)[1])
        self.server = ServerProc(realm_dir, self.server_port, workers=workers) if start_server else None
        self.port = free_port()
        self.raddb = os.path.join(self.work, "raddb")
        self.fr = None
        self.log_path = os.path.join(self.work, "freeradius.out")

    def configure(self):
        os.makedirs(os.path.join(self.work, "run"), exist_ok=True)
        os.makedirs(os.path.join(self.work, "log"), exist_ok=True)
        assert cli.main(["radius-config", "--dir", self.realm_dir, "--out", self.raddb,
                         "--listen", f"127.0.0.1:{self.port}", "--user", "",
                         "--run-dir", os.path.join(self.work, "run"),
                         "--log-dir", os.path.join(self.work, "log"), "--reject-delay", "0"]) == 0

    def start(self):
        self.stop_freeradius()
        self.configure()
        self.fr = subprocess.Popen(["freeradius", "-f", "-l", "stdout", "-d", self.raddb],
                                   stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT)
        if not _wait_udp_ready(self.log_path, self.fr):
            self.stop()
            raise RuntimeError("freeradius did not start: " + self.fr_log())
        return self

    def fr_log(self):
        with open(self.log_path) as f:
            return f.read()

    def stop_freeradius(self):
        if self.fr is not None:
            stop_process(self.fr)
            self.fr = None

    def stop(self):
        self.stop_freeradius()
        if self.server is not None:
            self.server.stop()

    def radtest(self, user, password, secret):
        out = subprocess.run(["radtest", "-t", "pap", user, password, f"127.0.0.1:{self.port}",
                              "0", secret], capture_output=True, text=True, timeout=60)
        return out.stdout + out.stderr

    def radclient(self, requests, secret):
        """Send ``requests`` ([(user, password)]) at once; returns (accepted, rejected, lost)."""
        body = "\n\n".join(f'User-Name = "{u}"\nUser-Password = "{p}"' for u, p in requests) + "\n"
        out = subprocess.run(["radclient", "-s", "-p", str(len(requests)), "-r", "1", "-t", "30",
                              f"127.0.0.1:{self.port}", "auth", secret],
                             input=body, capture_output=True, text=True, timeout=120)
        text = out.stdout + out.stderr

        def n(label):
            m = re.search(label + r"\s*:\s*(\d+)", text)
            assert m, text
            return int(m.group(1))
        return n("Accepted"), n("Rejected"), n("Lost")


def accepted(out):
    return "Received Access-Accept" in out
