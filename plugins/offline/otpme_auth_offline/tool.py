"""``otpme-auth pin-offline-token | show-offline-token | unpin-offline-token``.

CLI only (imported by the command, never on the login path).  Nothing shown
here is secret: token names, times, the pin and the failure count, all read
from the caches' headers without unlocking them.
"""

import os
import time

from otpme_auth import OtpmeAuthError, StateFileError

from .cache import DEFAULT_ROOT, CacheError, decode_name


class ToolError(OtpmeAuthError):
    """A mistake on the command line or an unusable cache (one line)."""


def add_commands(subparsers):
    p = subparsers.add_parser(
        "pin-offline-token", help="allow only TOKEN to log USER in on this host (online, offline)")
    p.add_argument("user", help="the local user name")
    p.add_argument("token", help="a token with an offline cache on this host, e.g. alice/pass")
    _dir_arg(p)
    p.set_defaults(run=cmd_pin)

    p = subparsers.add_parser("unpin-offline-token", help="remove USER's pinned offline token")
    p.add_argument("user", help="the local user name")
    _dir_arg(p)
    p.set_defaults(run=cmd_unpin)

    p = subparsers.add_parser(
        "show-offline-token", help="show USER's offline caches (default: every user), no secrets")
    p.add_argument("user", nargs="?", help="the local user name (default: every user)")
    _dir_arg(p)
    p.set_defaults(run=cmd_show)

    from .pamyubico import add_command   # migration from pam_yubico (docs/smartcard.md)
    add_command(subparsers, _dir_arg)


def _dir_arg(p):
    p.add_argument("--cache-dir", default=DEFAULT_ROOT,
                   help="the offline_cache_dir of the PAM line (default %s)" % DEFAULT_ROOT)


def _cache(args):
    from .cache import OfflineCache
    return OfflineCache(args.cache_dir)


def cmd_pin(args, out):
    try:
        _cache(args).pin(args.user, args.token)
    except (CacheError, StateFileError, ValueError) as exc:
        raise ToolError(str(exc)) from None
    out.write("%s is pinned to token %s on this host\n" % (args.user, args.token))
    return 0


def cmd_unpin(args, out):
    try:
        removed = _cache(args).unpin(args.user)
    except (CacheError, StateFileError, ValueError) as exc:
        raise ToolError(str(exc)) from None
    out.write("%s: %s\n" % (args.user, "pin removed" if removed else "no token was pinned"))
    return 0


def _when(ts):
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def cmd_show(args, out):
    cache = _cache(args)
    try:
        users = [args.user] if args.user else _users(cache.root)
        if not users:
            out.write("no offline caches in %s\n" % cache.root)
        for user in users:
            tokens = cache.list_tokens(user)
            failures, last = cache.failures(user)
            out.write("user %s: pinned token: %s; failed offline attempts: %d%s\n" % (
                _shown(user), _shown(cache.pinned(user) or "none"), failures,
                " (last %s)" % _when(last) if failures and last else ""))
            if not tokens:
                out.write("  no cached tokens\n")
            for token in tokens:
                h = cache.info(user, token)
                if h is None:
                    continue
                out.write("  token %s: cached %s, last used %s, expires %s (or if unused "
                          "until %s), key function %s t=%d m=%dKiB p=%d%s\n" % (
                              _shown(token), _when(h.created), _when(h.last_used), _when(h.expires),
                              _when(h.unused_until()), h.params.name, h.params.iterations,
                              h.params.memory_kib, h.params.threads,
                              ", with a %d-digit code" % h.otp_digits if h.otp_digits else ""))
    except (CacheError, StateFileError, ValueError) as exc:
        raise ToolError(str(exc)) from None
    return 0


def _shown(name):
    """A user or token name for the terminal: the token names came from the server's
    answers, so its escape sequences and controls are removed (issue 8, point 14)."""
    from otpme_auth.conversation import sanitize
    return sanitize(name, multiline=False)


def _users(root):
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ToolError("cannot list %s: %s" % (root, exc.strerror)) from None
    users = []
    for name in names:
        try:
            users.append(decode_name(name))
        except (ValueError, UnicodeDecodeError):
            continue
    return users
