"""otpme-auth's server against privacyIDEA, in one run, with one load generator.

    .venv/bin/python benchmarks/peer/run.py            # everything (5-15 min: mostly privacyIDEA enrolment)
    .venv/bin/python benchmarks/peer/run.py --levels 64 --types totp --duration 5

What it does, on this machine, in one process tree:

1. privacyIDEA from PyPI (``privacyidea==3.14``, the newest, which installs on this
   Debian's Python 3.11) in its own venv (``--pi-venv``, made on first use and reused),
   with its default SQLite setup: a ``pi.cfg`` with ``SQLALCHEMY_DATABASE_URI`` sqlite,
   ``pi-manage setup create_enckey / create_audit_keys / create_tables``, ``pi-manage
   admin add``.  Its default audit log (SQL, same database) stays on.  It runs under
   gunicorn (sync workers, ``--pi-workers``, default 5 = gunicorn's documented
   (2 x cores) + 1 for these 2 cores) with HTTPS on a self-signed P-256 certificate.
2. our server (``otpme-auth-server run``, ``--workers``, default 1 as in
   benchmarks/server: the load generator needs the other core) on SQLite, its own TLS,
   the benchmark host joined, so every request is mutual TLS.
3. Users with a HOTP and TOTP token each (same PIN) in both, from the same secrets.
4. The same load generator (loadgen.py) against both: for each token type and 1/16/64
   clients, privacyIDEA then ours, a fresh TCP+TLS connection per request, each one a
   valid never used PIN+code (privacyIDEA: POST /validate/check user, pass; ours: POST
   /v1/auth).  Throughput, p50/p99 (connect to last byte) and the ratios.

Fairness: same machine, same generator, both over TLS with a full handshake per
request, both on SQLite with their defaults for durability.  Our server gets fewer
processes than privacyIDEA.  The generator is one Python process: at high rates it can
limit our number, never privacyIDEA's.
"""

import argparse
import asyncio
import datetime
import ipaddress
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "server"))
import loadgen  # noqa: E402
from bench import do_join as ours_join  # noqa: E402  (benchmarks/server: join the benchmark host)

PI_VERSION = "3.14"
GUNICORN_VERSION = "27.0.1"
PIN = "4711"
HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- privacyIDEA

def pi_venv(path):
    py = os.path.join(path, "bin", "python")
    if os.path.exists(py):
        out = subprocess.run([py, "-m", "pip", "show", "privacyidea"], capture_output=True, text=True).stdout
        if f"Version: {PI_VERSION}" in out:
            return path
        shutil.rmtree(path)
    log(f"installing privacyIDEA {PI_VERSION} and gunicorn {GUNICORN_VERSION} into {path} (a few minutes)")
    subprocess.run([sys.executable, "-m", "venv", path], check=True)
    subprocess.run([py, "-m", "pip", "install", "-q", f"privacyidea=={PI_VERSION}",
                    f"gunicorn=={GUNICORN_VERSION}"], check=True)
    return path


def self_signed(d):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cf, kf = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    with open(cf, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(kf, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    os.chmod(kf, 0o600)
    return cf, kf


def pi_setup(venv, d, totp_users, hotp_users, tuned=False):
    cfg = os.path.join(d, "pi.cfg")
    with open(cfg, "w") as f:
        f.write(f"SQLALCHEMY_DATABASE_URI = 'sqlite:///{d}/privacyidea.sqlite'\n"
                f"SECRET_KEY = {os.urandom(24).hex()!r}\nPI_PEPPER = {os.urandom(24).hex()!r}\n"
                f"PI_ENCFILE = '{d}/enckey'\nPI_AUDIT_KEY_PRIVATE = '{d}/private.pem'\n"
                f"PI_AUDIT_KEY_PUBLIC = '{d}/public.pem'\nPI_LOGFILE = '{d}/privacyidea.log'\n"
                "PI_LOGLEVEL = 30\n")
        if tuned:
            # privacyIDEA's own switches: do not re-validate the audit/response RSA key
            # (~100 ms each, per its config.py) every time a response is signed.
            f.write("PI_AUDIT_NO_PRIVATE_KEY_CHECK = True\nPI_RESPONSE_NO_PRIVATE_KEY_CHECK = True\n")
    os.chmod(cfg, 0o600)
    env = dict(os.environ, PRIVACYIDEA_CONFIGFILE=cfg)
    manage = os.path.join(venv, "bin", "pi-manage")
    for cmd in (["setup", "create_enckey"], ["setup", "create_audit_keys"], ["setup", "create_tables"],
                ["admin", "add", "admin", "-p", os.urandom(12).hex()]):
        subprocess.run([manage] + cmd, env=env, check=True, capture_output=True, cwd=d)
    passwd = os.path.join(d, "users")
    with open(passwd, "w") as f:
        for n, (u, _) in enumerate(totp_users + hotp_users):
            f.write(f"{u}:x:{10000 + n}:{10000 + n}:{u}:/home/{u}:/bin/sh\n")
    spec = os.path.join(d, "spec.json")
    with open(spec, "w") as f:
        json.dump({"passwd": passwd, "realm": "bench", "pin": PIN,
                   "tokens": [[u, "totp", s.hex()] for u, s in totp_users]
                   + [[u, "hotp", s.hex()] for u, s in hotp_users]}, f)
    subprocess.run([os.path.join(venv, "bin", "python"), os.path.join(HERE, "pi_setup.py"), cfg, spec],
                   env=env, check=True, capture_output=True, cwd=d)
    os.unlink(spec)
    return cfg, env


def pi_start(venv, d, cfg, env, workers):
    cert, key = self_signed(d)
    port = free_port()
    app = f"privacyidea.app:create_app(config_name='production',config_file={cfg!r},silent=True)"
    proc = subprocess.Popen([os.path.join(venv, "bin", "gunicorn"), "--workers", str(workers),
                             "--bind", f"127.0.0.1:{port}", "--certfile", cert, "--keyfile", key,
                             "--log-level", "warning", "--backlog", "2048", app],
                            env=env, cwd=d, stdout=open(os.path.join(d, "gunicorn.log"), "w"),
                            stderr=subprocess.STDOUT)
    ctx = ssl.create_default_context(cafile=cert)
    ctx.check_hostname = False
    return proc, port, ctx


# ---------------------------------------------------------------- ours

def ours_setup(base, totp_users, hotp_users):
    from otpme_auth_server import cli, config, realm
    from otpme_auth_server.crypto import SecretBox
    from otpme_auth_server.store import Store
    d = os.path.join(base, "srv")
    port = free_port()
    cli.main(["init", "--dir", d, "--realm", "bench.example", "--listen", f"127.0.0.1:{port}", "--db", "sqlite"])
    with open(os.path.join(d, "server.json")) as f:
        cfg = json.load(f)
    cfg["log_level"] = "WARNING"
    # Connections are counted before TLS, per source address (default 64): every
    # request of the generator comes from 127.0.0.1, up to 64 at once plus closing ones.
    cfg["max_unauthenticated_per_address"] = 1024
    config.save(d, cfg)
    cfg = config.load(d)
    store = Store(cfg.db)
    box = SecretBox.from_dir(d)
    with store.session() as c:
        with c.transaction():
            jotp = realm.host_add(c, box, "bench-host")
            h = c.get("host", "bench-host")
            h["unlimited"] = True  # every user may log in here (no per-host token list)
            c.update("host", "bench-host", h)
            for users, ttype in ((totp_users, "totp"), (hotp_users, "hotp")):
                for u, secret in users:
                    realm.user_add(c, u)
                    realm.token_add(c, box, None, f"{u}/{ttype}", ttype, secret=secret, pin=PIN)
    return d, port, jotp


def wait_ready(port, ctx, proc, what, timeout=120):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), 1) as s:
                with ctx.wrap_socket(s):
                    return
        except (OSError, ssl.SSLError):
            time.sleep(0.2)
    raise SystemExit(f"{what} did not come up on port {port}")


def users(prefix, n):
    return [(f"{prefix}{i}", os.urandom(20)) for i in range(n)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", default="1,16,64")
    ap.add_argument("--types", default="hotp,totp")
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per run (each server)")
    ap.add_argument("--workers", type=int, default=1, help="our server's processes")
    ap.add_argument("--pi-workers", type=int, default=5, help="gunicorn sync workers for privacyIDEA")
    ap.add_argument("--pi-venv", default="/var/tmp/otpme-auth-bench/privacyidea-" + PI_VERSION)
    ap.add_argument("--ours-totp-users", type=int, default=40000)
    ap.add_argument("--pi-totp-users", type=int, default=600)
    ap.add_argument("--hotp-users", type=int, default=128)
    ap.add_argument("--pi-tuned", action="store_true",
                    help="privacyIDEA with PI_AUDIT_NO_PRIVATE_KEY_CHECK and PI_RESPONSE_NO_PRIVATE_KEY_CHECK")
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    types = args.types.split(",")

    venv = pi_venv(args.pi_venv)
    base = tempfile.mkdtemp(prefix="otpme-peer-bench-")
    procs = []
    try:
        hotp_users = users("h", args.hotp_users)
        ours_totp = users("t", args.ours_totp_users)
        pi_totp = ours_totp[:args.pi_totp_users]  # same secrets; each server's token used once
        t0 = time.time()
        pid = os.path.join(base, "pi")
        os.makedirs(pid)
        cfg, env = pi_setup(venv, pid, pi_totp, hotp_users, args.pi_tuned)
        log(f"privacyIDEA set up: {len(pi_totp)} TOTP + {len(hotp_users)} HOTP tokens ({time.time() - t0:.0f} s)")
        t0 = time.time()
        d, oport, jotp = ours_setup(base, ours_totp, hotp_users)
        log(f"otpme-auth set up: {len(ours_totp)} TOTP + {len(hotp_users)} HOTP tokens ({time.time() - t0:.0f} s)")

        piproc, pport, pctx = pi_start(venv, pid, cfg, env, args.pi_workers)
        procs.append(piproc)
        oproc = subprocess.Popen([sys.executable, "-m", "otpme_auth_server.cli", "run", "--dir", d,
                                  "--workers", str(args.workers), "--log-level", "WARNING"])
        procs.append(oproc)
        cactx = ssl.create_default_context(cafile=os.path.join(d, "ca.pem"))
        cactx.check_hostname = False
        wait_ready(oport, cactx, oproc, "otpme-auth-server")
        octx = ours_join(d, oport, jotp, base)
        wait_ready(pport, pctx, piproc, "gunicorn/privacyIDEA")

        targets = {"privacyIDEA": (loadgen.privacyidea_target(pport, pctx),
                                   loadgen.Codes(pi_totp, hotp_users, PIN)),
                   "otpme-auth": (loadgen.ours_target(oport, octx),
                                  loadgen.Codes(ours_totp, hotp_users, PIN))}
        # Warm up (not counted): a few HOTP validations each, so every worker has started.
        for name, (target, codes) in targets.items():
            asyncio.run(loadgen.run(target, lambda i, c=codes: c.hotp_owner(i, 8), 8, 1.0))

        results = {}
        for ttype in types:
            for conc in levels:
                for name, (target, codes) in targets.items():
                    if ttype == "totp":
                        def nxt(i, c=codes):
                            return c.next_totp
                    else:
                        def nxt(i, c=codes, n=conc):
                            return c.hotp_owner(i, n)
                    n, elapsed, lat, errors = asyncio.run(loadgen.run(target, nxt, conc, args.duration))
                    row = {"server": name, "type": ttype, "clients": conc, "n": n, "rate": n / elapsed,
                           "p50": loadgen.pct(lat, 50) * 1000, "p99": loadgen.pct(lat, 99) * 1000,
                           "errors": len(errors)}
                    results[(ttype, conc, name)] = row
                    log(f"  {name:<12} {ttype} {conc:>3} clients: {n:>6} in {elapsed:5.1f} s {row['rate']:8.1f}/s"
                        f"  p50 {row['p50']:8.1f} ms  p99 {row['p99']:8.1f} ms  errors {len(errors)}")
                    if errors:
                        log(f"    first error: {errors[0]!r}")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(base, ignore_errors=True)

    print(f"\nprivacyIDEA {PI_VERSION}{' tuned' if args.pi_tuned else ''} (gunicorn {GUNICORN_VERSION}, {args.pi_workers} sync workers, SQLite) vs "
          f"otpme-auth-server ({args.workers} worker{'s' if args.workers > 1 else ''}, SQLite); "
          f"{os.cpu_count()} CPUs; one load generator on the same machine; new TLS connection per request\n")
    print("| token | clients | privacyIDEA /s | p50 ms | p99 ms | otpme-auth /s | p50 ms | p99 ms "
          "| throughput x | p99 / |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = []
    for ttype in types:
        for conc in levels:
            p, o = results[(ttype, conc, "privacyIDEA")], results[(ttype, conc, "otpme-auth")]
            rows += [p, o]
            err = "" if not (p["errors"] or o["errors"]) else f" (errors {p['errors']}/{o['errors']})"
            print(f"| {ttype} | {conc} | {p['rate']:.1f} | {p['p50']:.1f} | {p['p99']:.1f} | {o['rate']:.0f} "
                  f"| {o['p50']:.1f} | {o['p99']:.1f} | {o['rate'] / p['rate']:.0f}x | "
                  f"{p['p99'] / o['p99']:.0f}x{err} |")
    if 64 in levels:
        for ttype in types:
            p, o = results[(ttype, 64, "privacyIDEA")], results[(ttype, 64, "otpme-auth")]
            ok = o["rate"] >= 50 * p["rate"] and o["p99"] * 10 < p["p99"]
            print(f"\ngoal at 64 clients, {ttype} (>= 50x throughput, p99 < 1/10): {'MET' if ok else 'NOT MET'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
