"""passfile: check the password against a file of PBKDF2-SHA256 hashes.

An example of a third-party otpme-auth plugin (docs/writing-plugins.md walks
through it).  Enable it on a PAM line with the bare word ``passfile``::

    auth required pam_python.so pam_otpme_auth.py passfile passfile_path=/etc/otpme-auth/passwd

The file has one line per user, ``user:iterations:salt_hex:hash_hex``; it
must be owned by root (or the running user) and writable by no one else.
Add a user with ``otpme-passfile add FILE USER``.
"""

import hashlib
import os

# [docs:imports]
from otpme_auth import PASSWORD, abstain, allow, compare_digest, deny, hookimpl, path, unavailable
# [/docs:imports]

DEFAULT_PATH = "/etc/otpme-auth/passwd"
ITERATIONS = 100_000
# A hash to compare against when the user is unknown, so that unknown and
# known users take the same time.
_DUMMY = (ITERATIONS, b"\0" * 16, b"\0" * 32)


# [docs:options]
@hookimpl
def otpme_auth_declare_options():
    return [path("passfile_path", DEFAULT_PATH, "the file of password hashes")]
# [/docs:options]


# [docs:hooks]
@hookimpl
def otpme_auth_collect_credentials(ctx):
    ctx.ask_authtok("Password: ")


@hookimpl
def otpme_auth_verify(ctx, options):
    try:
        entries = read_passfile(options.passfile_path)
    except FileNotFoundError:
        return unavailable("no password file at %s" % options.passfile_path)
    except (OSError, ValueError) as exc:
        return unavailable("cannot use %s: %s" % (options.passfile_path, exc))
    password = ctx.credentials.get(PASSWORD)
    if password is None:
        return abstain("no password was collected")
    iterations, salt, expected = entries.get(ctx.user, _DUMMY)
    actual = hashlib.pbkdf2_hmac("sha256", password.reveal().encode(), salt, iterations)
    if compare_digest(actual, expected) and ctx.user in entries:
        return allow("password matches")
    if ctx.user not in entries:
        return deny("no entry for the user in %s" % options.passfile_path, pam_code="USER_UNKNOWN")
    return deny("wrong password", user_message="Wrong password.")
# [/docs:hooks]


def read_passfile(filename):
    """Parse the file after checking it is safe to trust; ``{user: (iterations, salt, hash)}``."""
    fd = os.open(filename, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "r", encoding="utf-8") as fh:
        st = os.fstat(fh.fileno())
        if st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o022:
            raise ValueError("it must be owned by root and writable by no one else")
        entries = {}
        for number, line in enumerate(fh, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                user, iterations, salt, digest = line.split(":")
                entries[user] = (int(iterations), bytes.fromhex(salt), bytes.fromhex(digest))
            except ValueError:
                raise ValueError("line %d is not user:iterations:salt:hash" % number) from None
        return entries


def hash_line(user, password, iterations=ITERATIONS, salt=None):
    salt = os.urandom(16) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return "%s:%d:%s:%s" % (user, iterations, salt.hex(), digest.hex())


def main(argv=None):
    """``otpme-passfile add FILE USER``: add or replace a user (asks for the password)."""
    import getpass
    import sys
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3 or argv[0] != "add":
        sys.stderr.write("usage: otpme-passfile add FILE USER\n")
        return 2
    _, filename, user = argv
    password = getpass.getpass("Password for %s: " % user)
    lines = []
    if os.path.exists(filename):
        with open(filename, encoding="utf-8") as fh:
            lines = [ln for ln in fh.read().splitlines() if not ln.startswith(user + ":")]
    lines.append(hash_line(user, password))
    tmp = filename + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    os.replace(tmp, filename)
    return 0
