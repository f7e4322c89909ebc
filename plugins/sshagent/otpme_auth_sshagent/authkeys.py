"""The keys a user may sign with when no server decides (pam_ssh_agent_auth's way).

A key file the user can write makes ``sudo`` passwordless for anyone who runs as
that user (pam_ssh_agent_auth issue #17, NixOS #31611).  So the file, and every
directory above it, must be owned by root and writable by root alone; a symlink
anywhere in the path is refused (not followed).  The loud option
``allow_user_owned_authorized_keys_file`` also accepts the user being
authenticated as owner (never group- or world-writable), and says so in the log
at every login.
"""

import os
import pwd
import stat
import subprocess

from .agent import KEY_ALGORITHMS, parse_public_key

MAX_FILE = 1 << 20
COMMAND_TIMEOUT = 10


class KeysRefused(Exception):
    """The configured keys cannot be trusted or read; the text says why."""


def expand(template, user, home):
    """``%u`` -> user, ``%h`` -> home, ``%%`` -> ``%``; any other ``%x`` is an error."""
    out, i = [], 0
    while i < len(template):
        c = template[i]
        if c == "%" and i + 1 < len(template):
            n = template[i + 1]
            if n not in "uh%":
                raise KeysRefused("authorized_keys: unknown placeholder %%%s (only %%u, %%h, %%%%)" % n)
            out.append({"u": user, "h": home, "%": "%"}[n])
            i += 2
            continue
        if c == "%":
            raise KeysRefused("authorized_keys: a lone %% at the end")
        out.append(c)
        i += 1
    return "".join(out)


def _check(st, where, owners):
    if st.st_uid not in owners:
        return "%s is owned by uid %d" % (where, st.st_uid)
    if st.st_mode & 0o022:
        return "%s is writable by %s" % (where, "group and others" if st.st_mode & 0o022 == 0o022
                                         else "its group" if st.st_mode & 0o020 else "others")
    return None


def open_trusted(path, owners=(0,), what="authorized_keys file"):
    """Open ``path`` for reading after checking it and every directory above it.

    :param owners: the uids allowed to own them (root; with the loud option also the user).
    :returns: a file descriptor (the caller closes it).
    :raises KeysRefused: naming the first component that fails.
    """
    if not path.startswith("/") or any(p in (".", "..") for p in path.split("/")):
        raise KeysRefused("%s %r: not a plain absolute path" % (what, path))
    parts = [p for p in path.split("/") if p]
    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    try:
        problem = _check(os.fstat(fd), "/", owners)
        if problem:
            raise KeysRefused("%s %s refused: %s" % (what, path, problem))
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            where = "/" + "/".join(parts[:i + 1])
            flags = os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_RDONLY | os.O_NONBLOCK if last
                                                   else os.O_RDONLY | os.O_DIRECTORY)
            try:
                nfd = os.open(part, flags, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (40, 20) and os.path.islink(where):  # ELOOP, ENOTDIR
                    raise KeysRefused("%s %s refused: %s is a symlink (not followed)"
                                      % (what, path, where)) from None
                raise KeysRefused("%s %s: %s at %s" % (what, path, exc.strerror, where)) from None
            os.close(fd)
            fd = nfd
            st = os.fstat(fd)
            if last and not stat.S_ISREG(st.st_mode):
                raise KeysRefused("%s %s refused: not a regular file" % (what, path))
            problem = _check(st, where, owners)
            if problem:
                raise KeysRefused("%s %s refused: %s; it and every directory above it must "
                                  "be owned by root and writable by root alone" % (what, path, problem))
        return fd
    except BaseException:
        os.close(fd)
        raise


def read_trusted(path, owners=(0,)):
    fd = open_trusted(path, owners)
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(MAX_FILE + 1)
    if len(data) > MAX_FILE:
        raise KeysRefused("authorized_keys file %s is larger than %d bytes" % (path, MAX_FILE))
    return data.decode("utf-8", "replace")


def parse(text, log=None):
    """The public key blobs of an authorized_keys text, of the types we accept.

    A line with options (``from=``, ``command=``, ``cert-authority``...) is skipped:
    they cannot be honoured here, and skipping fails closed.
    """
    blobs = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        first = line.split(None, 1)[0]
        if first not in KEY_ALGORITHMS:
            if log:
                if first.startswith(("ssh-", "sk-", "ecdsa-")):
                    log("line %d: key type %s is not accepted; skipped" % (n, first[:40]))
                else:
                    log("line %d has options; skipped (they cannot be honoured here)" % n)
            continue
        try:
            _, blob = parse_public_key(line)
        except ValueError as exc:
            if log:
                log("line %d: %s; skipped" % (n, exc))
            continue
        blobs.append(blob)
    return blobs


def run_command(command, command_user, user, owners=(0,)):
    """Run ``authorized_keys_command USER`` as ``command_user``; returns its output.

    The command (its file and directories) must pass the same ownership checks as a
    key file; it runs with an empty environment, no stdin, a timeout, and its
    output is capped.
    """
    argv = command.split()
    fd = open_trusted(argv[0], owners, what="authorized_keys_command")
    os.close(fd)
    try:
        pw = pwd.getpwnam(command_user)
    except KeyError:
        raise KeysRefused("authorized_keys_command_user %r does not exist" % command_user) from None
    kwargs = {}
    if os.geteuid() == 0:
        kwargs = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
    elif os.geteuid() != pw.pw_uid:
        raise KeysRefused("authorized_keys_command must run as %s, and only root can switch to it"
                          % command_user)
    try:
        proc = subprocess.run(argv + [user], stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=COMMAND_TIMEOUT, env={"PATH": "/usr/bin:/bin"},
                              cwd="/", close_fds=True, **kwargs)
    except subprocess.TimeoutExpired:
        raise KeysRefused("authorized_keys_command %s did not finish in %d s"
                          % (argv[0], COMMAND_TIMEOUT)) from None
    except OSError as exc:
        raise KeysRefused("authorized_keys_command %s: %s" % (argv[0], exc.strerror)) from None
    if proc.returncode != 0:
        raise KeysRefused("authorized_keys_command %s exited with %d" % (argv[0], proc.returncode))
    if len(proc.stdout) > MAX_FILE:
        raise KeysRefused("authorized_keys_command %s printed more than %d bytes" % (argv[0], MAX_FILE))
    return proc.stdout.decode("utf-8", "replace")
