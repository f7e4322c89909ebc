"""``otpme-auth enroll totp|hotp``: a new secret file, as ``google-authenticator(1)`` makes it.

CLI only (imported by the command, never on the login path).  The flags are the
peer tool's, but nothing is asked interactively: what the peer would ask has a
default here (TOTP: reuse disallowed; window 3; rate limit 3 per 30 s; 5 scratch
codes), and each flag overrides it.  The file is written with
:class:`~.secretfile.SecretFile.build` (the peer's layout), atomically, mode
0400 and owned by the target user, as the peer writes it.
"""

import os
import sys

from otpme_auth import OtpmeAuthError

SECRET_BYTES = 16           # the peer's SECRET_BITS 128
DEFAULT_SCRATCH_CODES = 5
MAX_SCRATCH_CODES = 10

_ANSI_RESET = "\x1b[0m"
_ANSI_BLACKONGREY = "\x1b[30;47;27m"
_ANSI_WHITE = "\x1b[27m"
_ANSI_BLACK = "\x1b[7m"


class EnrollError(OtpmeAuthError):
    """A mistake on the enroll command line or an unwritable file (one line)."""


def add_commands(subparsers):
    parser = subparsers.add_parser(
        "enroll", help="create a google-authenticator secret file (TOTP or HOTP) for a user")
    sub = parser.add_subparsers(dest="enroll_kind", metavar="totp|hotp",
                                help="the kind of token to enroll")
    sub.required = True
    for kind, text in (("totp", "time-based codes (RFC 6238)"), ("hotp", "counter-based codes (RFC 4226)")):
        p = sub.add_parser(kind, help=text, description="The flags of google-authenticator(1).")
        _add_flags(p)
        p.set_defaults(run=run, kind=kind)


def _add_flags(p):
    p.add_argument("--user", help="the user to enroll (default: the one running this command)")
    p.add_argument("-t", "--time-based", action="store_true", help="TOTP (the same as 'enroll totp')")
    p.add_argument("-c", "--counter-based", action="store_true", help="HOTP (the same as 'enroll hotp')")
    p.add_argument("-d", "--disallow-reuse", dest="reuse", action="store_false", default=None,
                   help="disallow reuse of previously used TOTP codes (default)")
    p.add_argument("-D", "--allow-reuse", dest="reuse", action="store_true",
                   help="allow reuse of previously used TOTP codes")
    p.add_argument("-f", "--force", action="store_true", help="replace an existing file")
    p.add_argument("-l", "--label", help='the label in the otpauth:// URI (default: user@host)')
    p.add_argument("-i", "--issuer", help="the issuer in the otpauth:// URI (default: host)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing")
    p.add_argument("-Q", "--qr-mode", default="ANSI", type=str.upper, choices=["NONE", "ANSI", "UTF8"],
                   help="how to draw the QR code (default ANSI)")
    p.add_argument("-r", "--rate-limit", type=int, metavar="N", help="at most N logins ...")
    p.add_argument("-R", "--rate-time", type=int, metavar="M", help="... every M seconds (default 3 per 30)")
    p.add_argument("-u", "--no-rate-limit", action="store_true", help="no rate limit")
    p.add_argument("-s", "--secret", metavar="FILE", help="the file (default: ~USER/.google_authenticator)")
    p.add_argument("-S", "--step-size", type=int, metavar="S", help="seconds per TOTP code (1..60; default 30)")
    p.add_argument("-w", "--window-size", type=int, metavar="W", help="codes accepted around now (1..100; default 3)")
    p.add_argument("-W", "--minimal-window", action="store_true", help="accept only the current code (window 1)")
    p.add_argument("-e", "--emergency-codes", type=int, metavar="N",
                   help="number of scratch codes (0..10; default 5)")
    p.add_argument("-C", "--no-confirm", action="store_true",
                   help="accepted for compatibility: this command never asks for a code")


def _settings(args):
    totp = args.kind == "totp"
    if (args.time_based and not totp) or (args.counter_based and totp):
        raise EnrollError("-t/-c contradicts 'enroll %s'" % args.kind)
    if args.time_based and args.counter_based:
        raise EnrollError("give only one of -t and -c")
    reuse = args.reuse
    if not totp and reuse is not None:
        raise EnrollError("-d/-D apply to TOTP only")
    if args.step_size is not None and not totp:
        raise EnrollError("-S applies to TOTP only")
    if args.minimal_window and args.window_size is not None:
        raise EnrollError("give only one of -w and -W")
    window = 1 if args.minimal_window else args.window_size
    if args.no_rate_limit and (args.rate_limit is not None or args.rate_time is not None):
        raise EnrollError("give either -u or -r/-R")
    if args.no_rate_limit:
        rate = None
    elif (args.rate_limit is None) != (args.rate_time is None):
        raise EnrollError("-r and -R go together")
    else:
        rate = (args.rate_limit or 3, args.rate_time or 30)
    codes = DEFAULT_SCRATCH_CODES if args.emergency_codes is None else args.emergency_codes
    if not 0 <= codes <= MAX_SCRATCH_CODES:
        raise EnrollError("-e must be 0..%d" % MAX_SCRATCH_CODES)
    return dict(totp=totp, disallow_reuse=totp and not reuse, rate_limit=rate, window_size=window,
                step_size=args.step_size), codes


def _scratch_code():
    import secrets
    return str(10_000_000 + secrets.randbelow(90_000_000))


def _target(args):
    import pwd
    try:
        pw = pwd.getpwnam(args.user) if args.user else pwd.getpwuid(os.getuid())
    except KeyError:
        raise EnrollError("no such user: %s" % args.user) from None
    filename = args.secret or os.path.join(pw.pw_dir, ".google_authenticator")
    if not os.path.isabs(filename):
        filename = os.path.abspath(filename)
    return pw, filename


def uri(secret_b32, label, issuer, totp, step=None):
    """The otpauth:// URI (the peer's, plus ``counter`` for HOTP and a non-default ``period``)."""
    from urllib.parse import quote
    out = "otpauth://%s/%s?secret=%s" % ("totp" if totp else "hotp", quote(label, safe="@:"), secret_b32)
    if issuer:
        out += "&issuer=" + quote(issuer, safe="")
    if not totp:
        out += "&counter=1"
    elif step and step != 30:
        out += "&period=%d" % step
    return out


def qr_text(data, mode="ANSI"):
    """The QR code of ``data`` drawn for a terminal, as the peer draws it (black on grey)."""
    import qrcode  # only here: the CLI draws, a login never does
    qr = qrcode.QRCode(border=0, error_correction=qrcode.constants.ERROR_CORRECT_L)
    qr.add_data(data)
    qr.make(fit=True)
    m = qr.get_matrix()
    width = len(m)
    lines = []
    if mode == "UTF8":
        edge = _ANSI_BLACKONGREY + " " * (width + 4) + _ANSI_RESET
        lines.append(edge)
        for y in range(0, width, 2):
            row = []
            for x in range(width):
                top = m[y][x]
                bottom = m[y + 1][x] if y + 1 < width else False
                row.append("\u2588" if top and bottom else "\u2580" if top else "\u2584" if bottom else " ")
            lines.append(_ANSI_BLACKONGREY + "  " + "".join(row) + "  " + _ANSI_RESET)
        lines.append(edge)
        return "\n".join(lines) + "\n"
    edge = _ANSI_BLACKONGREY + "  " * (width + 4) + _ANSI_RESET
    lines += [edge, edge]
    for y in range(width):
        row, black = [_ANSI_BLACKONGREY, "    "], False
        for x in range(width):
            if m[y][x] != black:
                row.append(_ANSI_BLACK if m[y][x] else _ANSI_WHITE)
                black = m[y][x]
            row.append("  ")
        if black:
            row.append(_ANSI_WHITE)
        row.append("    " + _ANSI_RESET)
        lines.append("".join(row))
    lines += [edge, edge]
    return "\n".join(lines) + "\n"


def write_secret_file(filename, data, uid, gid, force):
    """Write ``data`` atomically (temp file, fsync, rename), 0400, owned by ``uid``."""
    from otpme_auth import StateFileError
    from otpme_auth.statefile import StateFile
    try:
        with StateFile.lock(filename, owner=uid, group=gid, allowed_mode=0o7777,
                            create_mode=0o400) as sf:
            if sf.data is not None and not force:
                raise EnrollError("%s exists; give -f to replace it" % filename)
            sf.replace(data)
    except StateFileError as exc:
        raise EnrollError(str(exc)) from None


def run(args, out):
    """Create the file, then show the URI, the QR code, the key and the scratch codes."""
    from otpme_auth.otp.base32 import b32encode

    from .gaverify import compute_code
    from .secretfile import SecretFile, SecretFileError
    options, ncodes = _settings(args)
    pw, filename = _target(args)
    secret = os.urandom(SECRET_BYTES)
    scratch = []
    while len(scratch) < ncodes:
        code = _scratch_code()
        if code not in scratch:
            scratch.append(code)
    try:
        sfile = SecretFile.build(secret, scratch_codes=scratch, **options)
    except SecretFileError as exc:
        raise EnrollError(str(exc)) from None
    write_secret_file(filename, sfile.serialize(), pw.pw_uid, pw.pw_gid, args.force)
    if args.quiet:
        return 0
    import socket
    host = socket.gethostname()
    label = args.label or "%s@%s" % (pw.pw_name, host)
    issuer = host if args.issuer is None else args.issuer
    key = b32encode(secret)
    link = uri(key, label, issuer, options["totp"], options["step_size"])
    out.write("Wrote %s for %s (mode 0400).\n" % (filename, pw.pw_name))
    out.write("Add this account to the authenticator app (the URI holds the secret: show it to no one):\n")
    out.write("  %s\n" % link)
    if args.qr_mode != "NONE":
        out.write(qr_text(link, args.qr_mode))
    out.write("Your new secret key is: %s\n" % key)
    if options["totp"]:
        import time
        step = options["step_size"] or 30
        out.write("Your verification code is %s\n" % compute_code(secret, int(time.time()) // step))
    else:
        out.write("Your verification code for code 1 is %s\n" % compute_code(secret, 1))
    if scratch:
        out.write("Your emergency scratch codes are:\n")
        for code in scratch:
            out.write("  %s\n" % code)
    out.flush()
    return 0


if __name__ == "__main__":  # pragma: no cover - manual use
    sys.exit("use: otpme-auth enroll totp|hotp [flags]")
