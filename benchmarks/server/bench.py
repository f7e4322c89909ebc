"""Logins per second and p50/p99 latency of the reference server.

Runs the real server (``otpme-auth-server run``, N worker processes on one port)
over mutual TLS with keep-alive, and an asyncio load generator with 1, 16, 64
concurrent clients, for TOTP and password tokens, on SQLite and PostgreSQL.
Every TOTP login uses a fresh valid code (42,000 users, codes precomputed), so
every one of them writes its replay counter: this is the real login path.

    .venv/bin/python benchmarks/server/bench.py                 # everything
    .venv/bin/python benchmarks/server/bench.py --backends sqlite --types totp
    .venv/bin/python benchmarks/server/bench.py --types totp --fresh --workers 2 --levels 1,64 --users 13000

``--fresh`` opens a new mutual-TLS connection per login (a full handshake: every PAM
login is a new process) and first measures the machine's floor for that, full
handshakes in C with the realm's keys (``openssl s_server``/``s_time``): one pair
(one login at a time) and one pair per core (the most this machine does in C).
``BENCH_PROFILE=FILE`` runs the server under cProfile (written when it stops).

The load generator runs on the same machine: on 2 cores it takes one of them, which
is why the server runs one worker by default.  PostgreSQL runs durable (fsync and
synchronous_commit on); ``--pg-async-commit`` shows how much of its time is the WAL
flush.  The paced row offers a fixed rate and counts each login's latency from the
moment it was due, so a stalled server is charged for the wait.
"""

import argparse
import asyncio
import json
import os
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

from otpme_auth_server import cli, config, otp, realm
from otpme_auth_server.crypto import Passwords, SecretBox
from otpme_auth_server.store import Store

PG_BIN = "/usr/lib/postgresql/15/bin"
PASSWORD = "bench-password-1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Pg:
    def __init__(self):
        self.base = tempfile.mkdtemp(prefix="otpme-bench-pg-")
        os.chmod(self.base, 0o755)
        self.data = os.path.join(self.base, "data")
        os.makedirs(self.data)
        if os.geteuid() == 0:
            shutil.chown(self.data, "nobody")
        os.chmod(self.data, 0o700)
        self.port = free_port()

    def _run(self, *cmd):
        prefix = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
        subprocess.run(prefix + list(cmd), check=True, capture_output=True, cwd="/")

    def start(self, extra=""):
        self._run(f"{PG_BIN}/initdb", "-D", self.data, "-U", "postgres", "--auth=trust")
        # Durable settings (fsync on, synchronous_commit on): the numbers are honest.
        self._run(f"{PG_BIN}/pg_ctl", "-D", self.data, "-w", "-l", os.path.join(self.data, "log"),
                  "-o", f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c max_connections=100 {extra}",
                  "start")
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self):
        try:
            self._run(f"{PG_BIN}/pg_ctl", "-D", self.data, "-m", "fast", "stop")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


def setup_realm(base, db, n_totp, n_pw, argon2):
    d = os.path.join(base, "srv")
    port = free_port()
    cli.main(["init", "--dir", d, "--realm", "bench.example", "--listen", f"127.0.0.1:{port}", "--db", db])
    with open(os.path.join(d, "server.json")) as f:
        cfg = json.load(f)
    cfg["argon2"] = argon2
    cfg["log_level"] = "WARNING"
    # The load generator is one address (127.0.0.1) with up to 64 logins in their TLS
    # handshake at once (--fresh): above the default per-address share (64).  Real hosts
    # come from many addresses; the total limits stay at their defaults.
    cfg["max_unauthenticated_per_address"] = 4096
    config.save(d, cfg)
    cfg = config.load(d)
    store = Store(cfg.db)
    box = SecretBox.from_dir(d)
    phc = Passwords(argon2).hash(PASSWORD)  # one hash for all: creation time is not measured
    secrets = []
    with store.session() as c:
        with c.transaction():
            jotp = realm.host_add(c, box, "bench-host")
            h = c.get("host", "bench-host")
            h["unlimited"] = True
            c.update("host", "bench-host", h)
            c.execute("UPDATE objects SET data = ? WHERE kind = 'accessgroup' AND name = 'LOGIN'",
                      (json.dumps({"max_fail": 0, "max_fail_reset": 0, "policies": []}),))
            for i in range(n_totp):
                u = f"t{i}"
                secret = os.urandom(20)
                realm.user_add(c, u)
                realm.token_add(c, box, None, f"{u}/totp", "totp", secret=secret)
                secrets.append((u, secret))
            for i in range(n_pw):
                u = f"p{i}"
                realm.user_add(c, u)
                c.insert("token", f"{u}/pw", {"type": "password", "enabled": True, "auto_disable": 0,
                                              "offline": False, "session_keep": False, "policies": [],
                                              "hash": phc, "2f_token": None, "2f_enabled": False}, owner=u)
    return d, port, jotp, secrets


def do_join(d, port, jotp, workdir):
    import http.client
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench-host")]))
           .sign(key, hashes.SHA256()))
    ctx = ssl.create_default_context(cafile=os.path.join(d, "ca.pem"))
    ctx.check_hostname = False
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx)
    c.request("POST", "/v1/join", json.dumps({"host": "bench-host", "jotp": jotp, "csr": csr.public_bytes(
        serialization.Encoding.PEM).decode()}))
    body = json.loads(c.getresponse().read())
    cert, keyf = os.path.join(workdir, "host.pem"), os.path.join(workdir, "host.key")
    with open(cert, "w") as f:
        f.write(body["certificate"])
    with open(keyf, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    ctx = ssl.create_default_context(cafile=os.path.join(d, "ca.pem"))
    ctx.check_hostname = False
    ctx.load_cert_chain(cert, keyf)
    return ctx


def request(user, password, close=False) -> bytes:
    body = json.dumps({"user": user, "password": password}).encode()
    return (b"POST /v1/auth HTTP/1.1\r\nHost: s\r\nContent-Type: application/json\r\n"
            + (b"Connection: close\r\n" if close else b"")
            + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


async def load(port, ctx, items, concurrency, duration, rate=None, fresh=False):
    """Send ``items`` (prebuilt requests) from ``concurrency`` keep-alive connections
    or, with ``fresh``, each login over a new mutual-TLS connection (TCP connect, a
    full handshake without session resumption, one request, close), as a PAM login
    is: every login is a new process, which has no TLS session to resume.

    Closed loop (each client sends its next login as soon as it has the answer) or,
    with ``rate``, paced: login k is due at start + k/rate and its latency is counted
    from that due time (no coordinated omission: a late server is charged for it).
    """
    lat, errors = [], []
    idx = [0]
    conns = ([(None, None)] * concurrency if fresh else
             [await asyncio.open_connection("127.0.0.1", port, ssl=ctx) for _ in range(concurrency)])
    start = time.perf_counter()
    stop_at = start + duration

    async def worker(r, w):
        try:
            while time.perf_counter() < stop_at and idx[0] < len(items):
                k = idx[0]
                req = items[k]
                idx[0] += 1
                t0 = time.perf_counter()
                if rate:
                    due = start + k / rate
                    if due > t0:
                        await asyncio.sleep(due - t0)
                    t0 = due
                try:
                    if fresh:
                        r = w = None
                        r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
                    w.write(req)
                    head = await r.readuntil(b"\r\n\r\n")
                    n = int(head.split(b"Content-Length: ", 1)[1].split(b"\r\n", 1)[0])
                    body = await r.readexactly(n)
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    errors.append(repr(exc).encode()[:200])
                    if not fresh:
                        raise
                    continue
                finally:
                    if fresh and w is not None:
                        w.close()
                lat.append(time.perf_counter() - t0)
                if not head.startswith(b"HTTP/1.1 200") or b'"status":"ok"' not in body:
                    errors.append(body[:200])
        finally:
            if w is not None:
                w.close()

    await asyncio.gather(*(worker(r, w) for r, w in conns))
    elapsed = time.perf_counter() - start
    return len(lat), elapsed, lat, errors


def run_loop(coro):
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def totp_items(secrets, start, close=False):
    """Fresh codes: steps T and T+1 of each token (both valid across one step change)."""
    step = otp.totp_step(time.time())
    # All step-T codes first: a user's two logins never race each other.
    return ([request(u, otp.hotp(s, step), close) for u, s in secrets[start:]]
            + [request(u, otp.hotp(s, step + 1), close) for u, s in secrets[start:]])


def tls_floor(d, base, seconds, pairs=1):
    """The machine's floor for --fresh: full mutual-TLS handshakes in C, no HTTP, no store.

    ``openssl s_server`` with the realm's server key and CA, ``openssl s_time -new`` with
    the joined host's certificate, for ``seconds``.  ``s_server`` answers one connection
    at a time, so ``pairs`` servers each get their own client, all at once: with one pair
    per core, what this machine's cores can do in C at best, server and clients together.
    Returns (handshakes per second, server CPU ms per handshake), or None without openssl.
    """
    if not shutil.which("openssl"):
        return None
    servers = []
    try:
        for _ in range(pairs):
            port = free_port()
            servers.append((port, subprocess.Popen(
                ["openssl", "s_server", "-quiet", "-accept", f"127.0.0.1:{port}",
                 "-cert", os.path.join(d, "server.pem"), "-key", os.path.join(d, "server.key"),
                 "-CAfile", os.path.join(d, "ca.pem"), "-Verify", "1", "-www"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
        for port, _ in servers:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    break
                except OSError:
                    time.sleep(0.05)
        cpu0 = sum(server_cpu(srv.pid) for _, srv in servers)
        t0 = time.perf_counter()
        clients = [subprocess.Popen(
            ["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-new",
             "-time", str(int(seconds)), "-cert", os.path.join(base, "host.pem"),
             "-key", os.path.join(base, "host.key"), "-CAfile", os.path.join(d, "ca.pem")],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for port, _ in servers]
        outs = [c.communicate()[0] for c in clients]
        elapsed = time.perf_counter() - t0
        cpu = sum(server_cpu(srv.pid) for _, srv in servers) - cpu0
    finally:
        for _, srv in servers:
            srv.terminate()
            srv.wait(10)
    n = sum(int(out.split(" connections in ", 1)[0].rsplit("\n", 1)[-1].strip()) for out in outs)
    return n / elapsed, cpu * 1000 / max(n, 1)


def server_cpu(pid):
    """CPU seconds used so far by the server process ``pid`` and its worker processes."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == pid or int(fields[1]) == pid:  # fields[1]: the parent's pid
            total += (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return total


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def run_backend(name, db, args, rows):
    base = tempfile.mkdtemp(prefix="otpme-bench-")
    srv = None
    try:
        argon2 = {"time_cost": args.argon2_t, "memory_cost": args.argon2_m, "parallelism": args.argon2_p}
        d, port, jotp, secrets = setup_realm(base, db, args.users, 64, argon2)
        prof = ["-m", "cProfile", "-o", os.environ["BENCH_PROFILE"]] if os.environ.get("BENCH_PROFILE") else []
        srv = subprocess.Popen([sys.executable, *prof, "-m", "otpme_auth_server.cli", "run", "--dir", d,
                                "--workers", str(args.workers), "--log-level", "WARNING"])
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        time.sleep(0.3 * args.workers)
        ctx = do_join(d, port, jotp, base)
        if args.fresh:
            # One pair: the floor of one login at a time.  One pair per core: the most
            # full handshakes this machine does in C, with no Python and no store at all.
            for pairs in sorted({1, os.cpu_count() or 1}):
                floor = tls_floor(d, base, args.duration, pairs)
                if floor:
                    rows.append((name, f"floor: C handshakes, {pairs} pair(s)", pairs, "", floor[0],
                                 float("nan"), float("nan"), 0, floor[1]))
                    print(f"  {name:<10} C TLS floor, {pairs} pair(s): {floor[0]:.0f} handshakes/s, "
                          f"server cpu {floor[1]:.2f} ms/handshake", file=sys.stderr)
        used = 0
        runs = [(t, c, None) for t in args.types for c in args.levels]
        if "totp" in args.types and args.paced:
            runs.append(("totp", max(args.levels), args.paced))
        for ttype, conc, rate in runs:
            if ttype == "totp":
                # Codes for the most this mode can do (a run that uses them all ends early).
                need = int(args.duration * (rate or (3000 if args.fresh else 8000))) + conc
                chunk = secrets[used:used + need // 2 + 1]
                used += len(chunk)
                if len(chunk) < need // 2 + 1:
                    raise SystemExit("not enough benchmark users; raise --users")
                items = totp_items(chunk, 0, close=args.fresh)
                dur = args.duration
            else:
                items = [request(f"p{i % 64}", PASSWORD, args.fresh) for i in range(100000)]
                dur = args.pw_duration
            cpu0 = server_cpu(srv.pid)
            n, elapsed, lat, errors = asyncio.run(load(port, ctx, items, conc, dur, rate, args.fresh))
            cpu_ms = (server_cpu(srv.pid) - cpu0) * 1000 / max(n, 1)
            if errors:
                print(f"  {len(errors)} failed logins, first: {errors[0]!r}", file=sys.stderr)
            rows.append((name, ttype + (f" paced {rate}/s" if rate else ""), conc, n, n / elapsed, pct(lat, 50) * 1000, pct(lat, 99) * 1000,
                         len(errors), cpu_ms))
            r = rows[-1]
            print(f"  {r[0]:<10} {r[1]:<8} {r[2]:>3} clients: {r[3]:>6} logins {r[4]:>7.0f}/s"
                  f"  p50 {r[5]:6.1f} ms  p99 {r[6]:6.1f} ms  errors {r[7]}  server cpu {r[8]:.2f} ms/login",
                  file=sys.stderr)
    finally:
        if srv is not None:
            srv.terminate()
            srv.wait(10)
        shutil.rmtree(base, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--types", default="totp,password")
    ap.add_argument("--levels", default="1,16,64")
    ap.add_argument("--duration", type=float, default=3.0, help="seconds per TOTP run")
    ap.add_argument("--pw-duration", type=float, default=3.0, help="seconds per password run")
    ap.add_argument("--paced", type=int, default=2000,
                    help="also run TOTP at this offered rate with the most clients (0: no)")
    ap.add_argument("--workers", type=int, default=1,
                    help="server processes (SO_REUSEPORT); on 2 cores the load generator needs the other one")
    ap.add_argument("--pg-async-commit", action="store_true",
                    help="run PostgreSQL with synchronous_commit=off (diagnosis; not durable)")
    ap.add_argument("--fresh", action="store_true",
                    help="a new mutual-TLS connection per login (full handshake, no resumption), "
                         "as every PAM login is a new process")
    ap.add_argument("--users", type=int, default=42000)
    ap.add_argument("--argon2-t", type=int, default=2)
    ap.add_argument("--argon2-m", type=int, default=19456)
    ap.add_argument("--argon2-p", type=int, default=1)
    args = ap.parse_args()
    args.types = args.types.split(",")
    args.levels = [int(x) for x in args.levels.split(",")]
    rows = []
    for b in args.backends.split(","):
        if b == "sqlite":
            run_backend("sqlite", "sqlite", args, rows)
        elif b == "postgresql":
            if not os.path.exists(f"{PG_BIN}/initdb"):
                print("PostgreSQL binaries not found; skipping", file=sys.stderr)
                continue
            pg = Pg()
            try:
                # --pg-async-commit: synchronous_commit=off, to see how much is the WAL fsync.
                run_backend("postgresql", pg.start("-c synchronous_commit=off" if args.pg_async_commit else ""),
                            args, rows)
            finally:
                pg.stop()
    print(f"\nserver: {args.workers} worker processes; argon2id t={args.argon2_t} m={args.argon2_m}KiB "
          f"p={args.argon2_p}; {os.cpu_count()} CPUs; load generator on the same machine; "
          f"{'a new mutual-TLS connection per login' if args.fresh else 'keep-alive connections'}\n")
    print("| store | token | clients | logins | logins/s | p50 ms | p99 ms | errors | server CPU ms/login |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        ms = lambda v: "-" if v != v else f"{v:.1f}"  # noqa: E731 (nan: the floor has no latency)
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3] or '-'} | {r[4]:.0f} | {ms(r[5])} | {ms(r[6])} | {r[7]} "
              f"| {r[8]:.2f} |")


if __name__ == "__main__":
    main()
