"""``otpme-auth authorized-keys USER`` (also ``otpme-get-authorized-keys USER``) for sshd.

sshd's ``AuthorizedKeysCommand`` (seed 001 §26)::

    AuthorizedKeysCommand /usr/local/bin/otpme-get-authorized-keys %u
    AuthorizedKeysCommandUser root

prints the OpenSSH public keys of the user's enabled ssh tokens that may log in on this
host, one a line, as the server's pre-auth answer lists them (docs/protocol.md: only
tokens usable on this host; an unknown user has none).  Nothing is printed for a user
without keys.  Exit status 1 with a one-line reason on stderr when no server answers
(sshd then offers no key from us).  Runs as root: it reads the host's key.
"""

import re
import sys

from otpme_auth.errors import ConfigError

from . import hostconfig
from .client import BadAnswer, Client, Unreachable

_KEY = re.compile(r"^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa) [A-Za-z0-9+/]+={0,2}$")


def add_command(subparsers):
    p = subparsers.add_parser("authorized-keys", help="print a user's ssh keys from the realm "
                              "(sshd's AuthorizedKeysCommand)")
    p.add_argument("user", help="the user sshd asks for (AuthorizedKeysCommand's %u)")
    p.add_argument("--config", default=hostconfig.DEFAULT_PATH,
                   help="the host config (default: %(default)s)")
    p.add_argument("--connect-timeout", type=float, default=3.0, metavar="SECONDS",
                   help="give up on a server after this long (default: %(default)s)")
    p.set_defaults(run=run)


class Refused(Exception):
    """The server answered, but not with the user's keys."""


def _printable(value):
    from otpme_auth.conversation import sanitize
    return sanitize(value, multiline=False)[:80]


def keys_for(config, user, connect_timeout=3.0):
    client = Client(config.servers, config.ca_file, config.cert_file, config.key_file,
                    connect_timeout, 30)
    try:
        client.connect()
        status, answer = client.request("/v1/preauth", {"user": user})
    finally:
        client.close()
    if status != 200 or answer.get("status") != "ok":
        raise Refused("the server refused: %s %s" % (status, _printable(answer.get("error", ""))))
    keys = []
    for m in answer.get("methods", []):
        key = m.get("public_key") if isinstance(m, dict) and m.get("type") == "ssh" else None
        # Only a plain key line reaches sshd: no options, no newline, nothing else.
        if isinstance(key, str):
            key = " ".join(key.split()[:2])
            if _KEY.match(key) and key not in keys:
                keys.append(key)
    return keys


def run(args, out):
    config = hostconfig.load(args.config)
    if config is None:
        raise ConfigError("%s is missing: this host has not joined a realm" % args.config)
    try:
        keys = keys_for(config, args.user, args.connect_timeout)
    except Unreachable as exc:
        print("otpme-auth authorized-keys: no server answered: %s" % exc, file=sys.stderr)
        return 1
    except (BadAnswer, Refused) as exc:   # an answer: no keys, and say why (no traceback)
        print("otpme-auth authorized-keys: %s" % exc, file=sys.stderr)
        return 1
    for key in keys:
        out.write(key + "\n")
    return 0


def main(argv=None):
    """``otpme-get-authorized-keys USER [--config PATH]`` (seed 001's name)."""
    import argparse
    parser = argparse.ArgumentParser(prog="otpme-get-authorized-keys",
                                     description="print a user's ssh keys from the realm")
    sub = parser.add_subparsers()
    add_command(sub)
    args = parser.parse_args(["authorized-keys"] + list(sys.argv[1:] if argv is None else argv))
    try:
        return args.run(args, sys.stdout)
    except ConfigError as exc:
        print("otpme-get-authorized-keys: %s" % exc, file=sys.stderr)
        return 2
