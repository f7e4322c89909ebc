"""``otpme-auth join``: make this host a member of a realm, once.

The administrator adds the host on the server (``otpme-auth-admin host add``),
which shows a one-time join password (JOTP).  Here we make the host's own key
(it never leaves the host), send a certificate request with the JOTP, and keep
the certificate the realm CA signed, the CA itself (pinned: the only CA the
host trusts) and the host config.  The CA must be given out of band
(``--ca``): we never trust whatever CA the network offers.  Nothing of the
host's files changes unless the join succeeds: the request is made with a
private copy of the given CA, so a failed join (a wrong ``--ca``, a wrong
JOTP) leaves an earlier join's pinned CA, key and config as they were.

The JOTP is never taken from the command line, where every local user reads
it (``/proc/PID/cmdline``, ``ps``) and could join first as this host: it is
typed at a prompt that does not echo (stdin a terminal), read from stdin
(one line, e.g. piped), or from a file (``--jotp-file FILE``; ``-`` is stdin),
which must not be readable by other users.  ``--jotp`` is refused.
"""

import os

from otpme_auth.errors import ConfigError
from otpme_auth.statefile import StateFile

from . import hostconfig
from .client import BadAnswer, Client, Unreachable


def add_command(subparsers):
    p = subparsers.add_parser("join", help="join this host to a realm with its one-time join password")
    p.add_argument("--server", required=True, action="append",
                   help="HOST:PORT of a server (repeat for failover, in order)")
    p.add_argument("--host", required=True, help="this host's name, as added on the server")
    p.add_argument("--jotp", metavar="JOTP",
                   help="refused: a JOTP on the command line is readable by every local user; "
                        "use --jotp-file, stdin or the prompt")
    p.add_argument("--jotp-file", metavar="FILE",
                   help="read the join one-time password from FILE's first line (- for stdin; "
                        "default: asked without echo on a terminal, else read from stdin)")
    p.add_argument("--ca", required=True, help="the realm CA certificate (PEM), obtained out of band")
    p.add_argument("--config", default=hostconfig.DEFAULT_PATH,
                   help="where to write the host config (default: %(default)s)")
    p.add_argument("--connect-timeout", type=float, default=3.0, metavar="SECONDS",
                   help="give up on a server after this long (default: %(default)s)")
    p.set_defaults(run=run_join)


def read_jotp(args, stdin=None):
    """The JOTP from ``--jotp-file``, the prompt or stdin; never from argv."""
    import sys
    stdin = stdin or sys.stdin
    if args.jotp is not None:
        raise ConfigError("--jotp is refused: on the command line the join one-time password is "
                          "readable by every local user (ps, /proc/PID/cmdline), who could join "
                          "first as this host; give it with --jotp-file FILE, on stdin "
                          "(--jotp-file -), or type it at the prompt")
    source = args.jotp_file
    if source is None and stdin.isatty():
        import getpass
        try:
            text = getpass.getpass("Join one-time password for %s: " % args.host)
        except EOFError:
            text = ""
        where = "the prompt"
    elif source in (None, "-"):
        text, where = stdin.readline(), "stdin"
    else:
        text, where = _read_jotp_file(source), "--jotp-file %s" % source
    jotp = text.rstrip("\r\n").strip()
    if not jotp:
        raise ConfigError("no join one-time password read from %s" % where)
    if len(jotp) > 256 or any(ord(ch) < 0x21 or ord(ch) > 0x7e for ch in jotp):
        raise ConfigError("the join one-time password read from %s is not one (printable ASCII, "
                          "no spaces, as otpme-auth-admin host add shows it)" % where)
    return jotp


def _read_jotp_file(path):
    import stat
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ConfigError("--jotp-file %s: %s" % (path, exc.strerror)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) and not stat.S_ISFIFO(st.st_mode):
            raise ConfigError("--jotp-file %s: not a regular file" % path)
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o077:
            raise ConfigError("--jotp-file %s has mode %04o: other users may read the join "
                              "one-time password; chmod 600 it (or give it on stdin)"
                              % (path, st.st_mode & 0o7777))
        with os.fdopen(os.dup(fd), "r", encoding="utf-8", errors="replace") as fh:
            return fh.readline(1024)
    finally:
        os.close(fd)


def run_join(args, out):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    jotp = read_jotp(args)
    directory = os.path.dirname(os.path.abspath(args.config))
    os.makedirs(directory, mode=0o755, exist_ok=True)
    try:
        with open(args.ca, "rb") as fh:
            ca_pem = fh.read()
        x509.load_pem_x509_certificate(ca_pem)
    except (OSError, ValueError) as exc:
        raise ConfigError("--ca %s: not a PEM certificate (%s)" % (args.ca, exc)) from None
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, args.host)]))
           .sign(key, hashes.SHA256()))
    paths = {name: os.path.join(directory, name) for name in ("ca.pem", "host.pem", "host.key")}
    # The join is made with a private copy of the given CA: the pinned ca.pem of a host
    # that joined before is replaced only once this join succeeded (a wrong --ca must
    # not become the CA this host trusts).
    import tempfile
    with tempfile.NamedTemporaryFile(prefix=".join-ca-", suffix=".pem", dir=directory) as tmp:
        tmp.write(ca_pem)
        tmp.flush()
        client = Client(args.server, tmp.name, None, None, args.connect_timeout, 30)
        try:
            status, answer = client.request("/v1/join", {
                "host": args.host, "jotp": jotp,
                "csr": csr.public_bytes(serialization.Encoding.PEM).decode()})
        except (Unreachable, BadAnswer) as exc:
            raise ConfigError("join failed: %s" % exc) from None
        finally:
            client.close()
    if status != 200 or answer.get("status") != "ok":
        from otpme_auth.conversation import sanitize
        raise ConfigError("join refused: %s" % sanitize(
            answer.get("message") or answer.get("error") or status, multiline=False))
    cert = answer.get("certificate")
    try:
        x509.load_pem_x509_certificate(cert.encode())
    except (AttributeError, ValueError):
        raise ConfigError("join failed: the server's answer holds no certificate") from None
    cert = cert.encode()
    _write(paths["ca.pem"], ca_pem, 0o644)
    _write(paths["host.key"], key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()), 0o600)
    _write(paths["host.pem"], cert, 0o644)
    _write(args.config, hostconfig.render({
        "realm": answer.get("realm", ""), "site": answer.get("site", ""), "host": args.host,
        "servers": ", ".join(args.server), "ca_file": paths["ca.pem"],
        "cert_file": paths["host.pem"], "key_file": paths["host.key"]}).encode(), 0o644)
    from otpme_auth.conversation import sanitize
    out.write("joined realm %s as %s; config %s\n" % (sanitize(answer.get("realm"), False),
                                                       args.host, args.config))
    return 0


def _write(path, data, mode):
    with StateFile.lock(path, allowed_mode=0o644, create_mode=mode) as state:
        state.replace(data)
    os.chmod(path, mode)
