"""passfile: check the password against a file of Argon2id hashes.

An example of a third-party otpme-auth plugin (docs/writing-plugins.md walks
through it).  Enable it on a PAM line with the bare word ``passfile``::

    auth required pam_python.so pam_otpme_auth.py passfile passfile_path=/etc/otpme-auth/passwd

The file has one line per user, ``user:$argon2id$v=19$m=65536,t=3,p=4$SALT$HASH``
(the hash is argon2-cffi's PHC string); it must be owned by root (or the running
user) and writable by no one else.  Add a user with ``otpme-passfile add FILE USER``.
Lines of the plugin's first version, ``user:iterations:salt_hex:hash_hex``
(PBKDF2-SHA256), are still checked; ``add`` writes Argon2id.
"""

import os

# [docs:imports]
from otpme_auth import PASSWORD, abstain, allow, compare_digest, deny, hookimpl, path, unavailable
# [/docs:imports]

DEFAULT_PATH = "/etc/otpme-auth/passwd"
#: argon2-cffi's defaults (RFC 9106's second recommendation): 3 passes over 64 MiB, 4 lanes.
PARAMETERS = {"time_cost": 3, "memory_cost": 65536, "parallelism": 4}
#: The cheapest Argon2id (one pass over 8 KiB): for tests and benchmarks, never a real file.
CHEAPEST = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}
# An unknown user's check when the file has no line to copy (see _dummy_for): the hash
# of a random password at the default cost.
_DUMMY = "$argon2id$v=19$m=65536,t=3,p=4$4VqJPJZ8SgbQu7gJuOdZkQ$KRC6iuat95wN+BrJL4h7ypkGwzvDOjQzM3tdS96QZ6s"


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
    # surrogateescape: bytes that are not UTF-8 are compared as the bytes they were
    typed = password.reveal().encode("utf-8", "surrogateescape")
    try:
        matches = check(entries.get(ctx.user) or _dummy_for(ctx.user, entries), typed)
    except ValueError as exc:
        return unavailable("the hash of %s in %s: %s" % (ctx.user, options.passfile_path, exc))
    if matches and ctx.user in entries:
        return allow("password matches")
    if ctx.user not in entries:  # the same words: a prober must not learn who has a line
        return deny("no entry for the user in %s" % options.passfile_path, "Wrong password.",
                    pam_code="USER_UNKNOWN")
    return deny("wrong password", user_message="Wrong password.")
# [/docs:hooks]


def check(encoded, password):
    """Whether ``password`` (bytes) matches a line's hash; ValueError if the hash is broken."""
    if encoded.startswith("$argon2id$"):
        # argon2-cffi's C bindings, not `import argon2`: every PAM login is a new
        # process, and argon2's Python API takes ~16 ms to import, the bindings ~0.7 ms.
        from _argon2_cffi_bindings import ffi, lib
        rc = lib.argon2_verify(ffi.new("char[]", encoded.encode()), ffi.new("char[]", password),
                               len(password), lib.Argon2_id)
        if rc not in (lib.ARGON2_OK, lib.ARGON2_VERIFY_MISMATCH):
            raise ValueError(ffi.string(lib.argon2_error_message(rc)).decode())
        return rc == lib.ARGON2_OK
    import hashlib  # a first-version line (PBKDF2-SHA256); hashlib loads OpenSSL, ~3 ms
    iterations, salt, digest = encoded.split(":")
    actual = hashlib.pbkdf2_hmac("sha256", password, bytes.fromhex(salt), int(iterations))
    return compare_digest(actual, bytes.fromhex(digest))


def _dummy_for(user, entries):
    """What an unknown user is checked against: a line of the file (the same one for the same
    name) with its salt and hash zeroed, so that it costs what the file's users cost (first-
    version lines are ~5x faster than Argon2id at the default cost) and matches no password."""
    if not entries:
        return _DUMMY
    values = list(entries.values())
    encoded = values[sum(user.encode("utf-8", "surrogateescape")) % len(values)]
    if encoded.startswith("$"):    # $argon2id$v=19$m=..,t=..,p=..$salt$hash (unpadded base64)
        parts = encoded.split("$")
        return "$".join(parts[:4] + ["A" * len(parts[4]), "A" * len(parts[5])])
    iterations, salt, digest = encoded.split(":")
    return ":".join([iterations, "0" * len(salt), "0" * len(digest)])


def read_passfile(filename):
    """Parse the file after checking it is safe to trust; ``{user: hash}``."""
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
            user, _, encoded = line.partition(":")
            if not (user and _valid_hash(encoded)):
                raise ValueError("line %d is not user:$argon2id$... (or user:iterations:salt:hash)"
                                 % number)
            entries[user] = encoded
        return entries


def _valid_hash(encoded):
    if encoded.startswith("$argon2id$"):   # printable ASCII: a NUL would end it early in C
        return encoded.count("$") == 5 and encoded.isascii() and encoded.isprintable()
    try:
        iterations, salt, digest = encoded.split(":")
        return int(iterations) > 0 and len(bytes.fromhex(salt)) > 0 and len(bytes.fromhex(digest)) == 32
    except ValueError:
        return False


def hash_line(user, password, **parameters):
    """The file's line for ``user``; ``parameters`` override :data:`PARAMETERS`."""
    from argon2 import PasswordHasher
    check_user_name(user)
    # as the login encodes what is typed: bytes that are not UTF-8 stay those bytes
    secret = password.encode("utf-8", "surrogateescape") if isinstance(password, str) else password
    return "%s:%s" % (user, PasswordHasher(**dict(PARAMETERS, **parameters)).hash(secret))


def check_user_name(user):
    """ValueError unless ``user`` reads back as itself: no ':', no leading '#', no
    surrounding spaces, and nothing unprintable (a '\\r' or '\\v' would start a new line)."""
    if not user or ":" in user or user.startswith("#") or user != user.strip() or not user.isprintable():
        raise ValueError("the user name must be printable, without ':', a leading '#' or surrounding spaces")


def main(argv=None):
    """``otpme-passfile add FILE USER``: add or replace a user (asks for the password)."""
    import getpass
    import sys
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3 or argv[0] != "add":
        sys.stderr.write("usage: otpme-passfile add FILE USER\n")
        return 2
    _, filename, user = argv
    try:
        check_user_name(user)
    except ValueError as exc:
        sys.stderr.write("otpme-passfile: %s\n" % exc)
        return 2
    password = getpass.getpass("Password for %r: " % user)
    try:
        _add(filename, user, password)
    except (OSError, ValueError) as exc:   # a missing folder, a file that is not UTF-8, ...
        sys.stderr.write("otpme-passfile: cannot update %s: %s\n" % (filename, exc))
        return 1
    return 0


def _add(filename, user, password):
    lines = []
    if os.path.exists(filename):
        with open(filename, encoding="utf-8") as fh:   # lines split as read_passfile splits them
            lines = [ln.rstrip("\n") for ln in fh if ln.strip().partition(":")[0] != user]
    lines.append(hash_line(user, password))
    import tempfile         # a new file of our own (mode 0600), never a stale or planted one
    fd, tmp = tempfile.mkstemp(prefix=".otpme-passfile.", dir=os.path.dirname(os.path.abspath(filename)))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, filename)
    except BaseException:
        os.unlink(tmp)
        raise
