"""``otpme-auth-server``: ``init`` a realm directory, ``run`` the server."""

import argparse
import logging
import os
import signal
import sys

from . import config
from .crypto import init_pki, write_private
from .errors import ServerError
from .realm import init_realm
from .store import Store


def cmd_init(args) -> int:
    d = os.path.abspath(args.dir)
    if os.path.exists(os.path.join(d, "server.json")):
        raise ServerError(f"{d} holds a realm already (server.json exists)")
    host, _ = config.split_listen(args.listen)
    if args.db != "sqlite" and not args.db.startswith(("postgresql://", "postgres://")):
        raise ServerError(f"--db {args.db!r} is neither 'sqlite' nor a postgresql:// URL")
    os.makedirs(d, mode=0o700, exist_ok=True)
    os.chmod(d, 0o700)
    names = sorted({host, "localhost", "127.0.0.1"} - {"0.0.0.0", "::"})
    init_pki(d, args.realm, args.site, names)
    write_private(os.path.join(d, "store.key"), os.urandom(32))
    data = {"realm": args.realm, "site": args.site, "listen": args.listen, "db": args.db,
            "workers": args.workers}
    config.save(d, data)
    cfg = config.load(d)
    old = os.umask(0o077)  # the SQLite files (db, -wal, -shm) are created 0600
    try:
        store = Store(cfg.db)
        store.create_schema()
        with store.session() as c:
            init_realm(c)
    finally:
        os.umask(old)
    print(f"realm {args.realm} (site {args.site}) initialised in {d}")
    print(f"CA certificate for hosts to pin: {os.path.join(d, 'ca.pem')}")
    return 0


def cmd_run(args) -> int:
    from .daemon import run_process
    cfg = config.load(os.path.abspath(args.dir))
    logging.basicConfig(level=args.log_level or cfg["log_level"],
                        format="%(asctime)s %(name)s[%(process)d] %(levelname)s %(message)s")
    host, port = config.split_listen(args.listen or cfg["listen"])
    workers = args.workers or cfg["workers"]
    os.umask(0o077)
    Store(cfg.db).create_schema()
    if workers <= 1:
        run_process(cfg, host, port)
        return 0
    children = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            try:
                run_process(cfg, host, port)
            finally:
                os._exit(0)
        children.append(pid)

    def stop(signum, frame):
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for pid in children:
        while True:
            try:
                os.waitpid(pid, 0)
                break
            except InterruptedError:
                continue
            except ChildProcessError:
                break
    return 0


def cmd_radius_config(args) -> int:
    from .radius import write_config
    info = write_config(args.dir, args.out, name=args.name, listen=args.listen, user=args.user,
                        run_dir=args.run_dir, log_dir=args.log_dir, reject_delay=args.reject_delay,
                        server_url=args.server_url)
    print(f"FreeRADIUS configuration for {info['clients']} client(s) written to {info['out']}")
    print(f"RADIUS on {info['listen']}; EAP-TTLS certificate {info['domain']} "
          f"(supplicants: ca-cert = the realm CA, domain-suffix-match {info['domain']})")
    print(f"logins go to {info['server']}/v1/radius/auth with this instance's own certificate")
    print(f"run it with: freeradius -d {info['out']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="otpme-auth-server", description="otpme-auth reference server")
    sub = p.add_subparsers(dest="cmd", required=True)
    i = sub.add_parser("init", help="create a realm: CA, server certificate, config, store")
    i.add_argument("--dir", required=True)
    i.add_argument("--realm", required=True)
    i.add_argument("--site", default="main")
    i.add_argument("--listen", default="127.0.0.1:4443")
    i.add_argument("--db", default="sqlite", help="'sqlite' (default) or a postgresql:// URL")
    i.add_argument("--workers", type=int, default=1)
    r = sub.add_parser("run", help="serve the realm")
    r.add_argument("--dir", required=True)
    r.add_argument("--listen", help="override the configured HOST:PORT")
    r.add_argument("--workers", type=int, help="processes sharing the port (SO_REUSEPORT)")
    r.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    rc = sub.add_parser("radius-config", help="write a FreeRADIUS configuration for the realm "
                        "(docs/radius.md)")
    rc.add_argument("--dir", required=True, help="the realm's server directory")
    rc.add_argument("--out", required=True, help="the raddb directory to write (run: freeradius -d OUT)")
    rc.add_argument("--name", default="freeradius", help="this FreeRADIUS instance's name (its "
                    "REST certificate is radius:NAME)")
    rc.add_argument("--listen", default="127.0.0.1:1812", help="ADDRESS[:PORT] RADIUS listens on")
    rc.add_argument("--user", default="freerad", help="the user FreeRADIUS runs as ('' = the "
                    "user that starts it)")
    rc.add_argument("--run-dir", default="/var/run/freeradius")
    rc.add_argument("--log-dir", default="/var/log/freeradius")
    rc.add_argument("--reject-delay", type=int, default=1, help="seconds before an Access-Reject (0-5)")
    rc.add_argument("--server-url", help="the realm's server (default: from server.json's listen)")
    return p


def main(argv=None) -> int:
    """Entry point of ``otpme-auth-server``."""
    args = build_parser().parse_args(argv)
    try:
        return {"init": cmd_init, "run": cmd_run, "radius-config": cmd_radius_config}[args.cmd](args)
    except ServerError as exc:
        print(f"otpme-auth-server: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
