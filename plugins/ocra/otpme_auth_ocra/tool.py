"""``otpme-auth ocra init|info|sync``: manage OCRA credential files, like pam_ocra's ocra_tool.

CLI only (imported by the command, never on the login path).  Secrets never go
on the command line (where ``ps`` shows them): the key is generated (and shown
once) or read from standard input with ``--key-stdin``; PINs are asked for
(without echo on a terminal, one line each from standard input otherwise).
"""

import os
import sys

from otpme_auth import OtpmeAuthError

from . import credfile


class ToolError(OtpmeAuthError):
    """A mistake on the ocra command line or an unusable file (one line)."""


def add_commands(subparsers):
    parser = subparsers.add_parser("ocra", help="manage OCRA credential files (init, info, sync)")
    sub = parser.add_subparsers(dest="ocra_command", metavar="init|info|sync",
                                help="what to do with the user's OCRA file")
    sub.required = True

    p = sub.add_parser("init", help="write a new credential file for a user")
    _target_args(p)
    p.add_argument("--suite", required=True, help="the OCRA suite, e.g. OCRA-1:HOTP-SHA1-6:C-QN08-PSHA1")
    p.add_argument("--key-stdin", action="store_true",
                   help="read the key (hex) from standard input instead of generating one")
    p.add_argument("--counter", type=int, default=0, help="the next counter value (C suites; default 0)")
    p.add_argument("--counter-window", type=int, default=0,
                   help="counters ahead that are accepted (C suites, 0..100; default 0)")
    p.add_argument("--timestamp-offset", type=int, default=0,
                   help="time steps either side that are accepted (T suites, 0..100; default 0)")
    p.add_argument("--kill-pin", action="store_true", help="also ask for a kill (duress) PIN (P suites)")
    p.add_argument("--force", action="store_true", help="replace an existing file")
    p.set_defaults(run=cmd_init)

    p = sub.add_parser("info", help="show a credential file without its secrets")
    _target_args(p)
    p.set_defaults(run=cmd_info)

    p = sub.add_parser("sync", help="resynchronise the counter from two consecutive responses")
    _target_args(p)
    p.add_argument("--challenge1", required=True, help="a challenge shown to the token")
    p.add_argument("--response1", required=True, help="the token's response to --challenge1")
    p.add_argument("--challenge2", required=True, help="the next challenge shown to the token")
    p.add_argument("--response2", required=True, help="the token's response to --challenge2")
    p.add_argument("--search", type=int, default=1000, help="counters to search ahead (default 1000)")
    p.set_defaults(run=cmd_sync)


def _target_args(p):
    p.add_argument("--user", help="the user (default: the one running this command)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--dir", help="the dir= of the PAM line: the file is DIR/USER (default ~USER/.ocra)")
    where.add_argument("-f", "--file", help="the credential file itself (as ocra_tool -f); owned by --user")


def _target(args):
    import pwd
    try:
        pw = pwd.getpwnam(args.user) if args.user else pwd.getpwuid(os.getuid())
    except KeyError:
        raise ToolError("no such user: %s" % args.user) from None
    if args.file:
        return os.path.abspath(args.file), pw.pw_uid, pw.pw_gid
    if args.dir:
        # dir= files are the administrator's: root-owned.
        return os.path.join(os.path.abspath(args.dir), pw.pw_name), 0, 0
    return os.path.join(pw.pw_dir, ".ocra"), pw.pw_uid, pw.pw_gid


def _ask(prompt):
    if sys.stdin.isatty():
        import getpass
        return getpass.getpass(prompt)
    line = sys.stdin.readline()
    if not line:
        raise ToolError("no answer on standard input for: %s" % prompt.strip())
    return line.rstrip("\n")


def _ask_pin(what):
    first = _ask("%s: " % what)
    if not first:
        raise ToolError("the %s must not be empty" % what.lower())
    if sys.stdin.isatty() and _ask("%s again: " % what) != first:
        raise ToolError("the two %ss differ" % what.lower())
    return first


def _lock(filename, owner, gid=None):
    from otpme_auth.statefile import StateFile
    return StateFile.lock(filename, owner=owner, group=gid, allowed_mode=0o600, create_mode=0o600)


def cmd_init(args, out):
    from otpme_auth import StateFileError
    from otpme_auth.otp import OtpError
    from otpme_auth.otp.hotp import DIGEST_SIZES
    from otpme_auth.otp.ocra import hash_pin, parse_suite
    try:
        suite = parse_suite(args.suite)
    except OtpError as exc:
        raise ToolError("--suite: %s" % exc) from None
    filename, uid, gid = _target(args)
    generated = not args.key_stdin
    if generated:
        key = os.urandom(DIGEST_SIZES[suite.algorithm])
    else:
        text = _ask("Key (hex): ").strip().lower()
        try:
            key = bytes.fromhex(text)
        except ValueError:
            raise ToolError("the key must be hex") from None
    pin_hash = kill_hash = None
    if suite.pin_algorithm:
        pin_hash = hash_pin(suite, _ask_pin("PIN"))
        if args.kill_pin:
            kill_hash = hash_pin(suite, _ask_pin("Kill PIN"))
    elif args.kill_pin:
        raise ToolError("--kill-pin needs a suite with P")
    try:
        cred = credfile.OcraCredential(
            suite.text, key, counter=args.counter if suite.counter else None,
            counter_window=args.counter_window, timestamp_offset=args.timestamp_offset,
            pin_hash=pin_hash, kill_pin_hash=kill_hash)
    except credfile.OcraCredentialError as exc:
        raise ToolError(str(exc)) from None
    try:
        with _lock(filename, uid, gid) as sf:
            if sf.data is not None and not args.force:
                raise ToolError("%s exists; give --force to replace it" % filename)
            sf.replace(credfile.serialize(cred))
    except StateFileError as exc:
        raise ToolError(str(exc)) from None
    out.write("Wrote %s (%s).\n" % (filename, suite.text))
    if generated:
        out.write("The key (load it into the token now; it is not shown again):\n  %s\n" % key.hex())
    return 0


def _load(args):
    from otpme_auth import StateFileError
    filename, uid, _ = _target(args)
    try:
        with _lock(filename, uid) as sf:
            if sf.data is None:
                raise ToolError("%s does not exist" % filename)
            return filename, credfile.parse(sf.data)
    except (StateFileError, credfile.OcraCredentialError) as exc:
        raise ToolError(str(exc)) from None


def cmd_info(args, out):
    filename, cred = _load(args)
    suite = cred.parsed_suite
    out.write("file: %s\n" % filename)
    out.write("suite: %s\n" % cred.suite)
    out.write("key: %d bytes (not shown)\n" % len(cred.key))
    if suite.counter:
        out.write("counter: %d\ncounter_window: %d\n" % (cred.counter, cred.counter_window))
    if suite.time_step is not None:
        out.write("timestamp_offset: %d (steps of %d s)\n" % (cred.timestamp_offset, suite.time_step))
    if suite.pin_algorithm:
        out.write("pin: set (%s hash, not shown)\n" % suite.pin_algorithm)
        out.write("kill pin: %s\n" % ("set" if cred.kill_pin_hash else "none"))
    out.write("disabled: %s\n" % ("yes" if cred.disabled else "no"))
    return 0


def cmd_sync(args, out):
    """Find the counter c with response1 at c and response2 at c+1; set the counter to c+2."""
    from otpme_auth import StateFileError
    from otpme_auth.otp import OtpError
    from otpme_auth.otp._hmac import compare_digest
    from otpme_auth.otp.ocra import ocra
    filename, uid, _ = _target(args)
    if not 1 <= args.search <= 100000:
        raise ToolError("--search must be 1..100000")
    try:
        with _lock(filename, uid) as sf:
            if sf.data is None:
                raise ToolError("%s does not exist" % filename)
            cred = credfile.parse(sf.data)
            suite = cred.parsed_suite
            if not suite.counter:
                raise ToolError("the suite %s has no counter to synchronise" % suite.text)
            if suite.time_step is not None or suite.session_length is not None:
                raise ToolError("sync supports counter suites without T or S")

            def code(challenge, counter):
                return ocra(suite, cred.key, challenge, counter=counter, pin_hash=cred.pin_hash)

            found = None
            for counter in range(cred.counter, min(cred.counter + args.search, (1 << 64) - 3)):
                if compare_digest(code(args.challenge1, counter).encode(), args.response1.encode()) \
                        and compare_digest(code(args.challenge2, counter + 1).encode(),
                                           args.response2.encode()):
                    found = counter
                    break
            if found is None:
                raise ToolError("no two consecutive counters within %d of %d give these responses"
                                % (args.search, cred.counter))
            sf.replace(credfile.serialize(cred.replace(counter=found + 2, disabled=cred.disabled)))
    except (StateFileError, credfile.OcraCredentialError) as exc:
        raise ToolError(str(exc)) from None
    except OtpError as exc:
        raise ToolError("cannot compute: %s" % exc) from None
    out.write("counter synchronised: next counter is %d\n" % (found + 2))
    return 0
