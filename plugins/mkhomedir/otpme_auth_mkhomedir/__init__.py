"""mkhomedir: create the user's home directory at the first login (pam_mkhomedir semantics).

Enabled by ``create_home`` (or its name) on an auth line, a session line, or both::

    auth    required pam_python.so pam_otpme_auth.py online create_home
    session optional pam_python.so pam_otpme_auth.py create_home home_skel=/etc/skel

It runs only after a successful authentication (``post_login``) or when PAM
opens a session (which it does only for authenticated users); never before
authentication, never after a failure.

Safety: the home is created root-owned 0700, filled from the skeleton through
directory file descriptors (``O_NOFOLLOW``, ``O_EXCL``, ``*at`` calls, no path
is ever followed inside the new tree), and only at the very end given to the
user with its final mode.  So the user cannot make us follow a symlink they
planted: while we write, nothing in the tree is theirs.  A home path that is a
symlink is left alone (with a warning), never followed.

On failure the partial home is removed (it is still root-owned and would
otherwise block every later attempt), the error is logged, and the call fails
closed.

Modes, as pam_mkhomedir: the umask is the ``umask`` option, else ``UMASK``
from login.defs, else 0022.  The home gets ``HOME_MODE`` from login.defs if
set, else ``0777 & ~umask``.  Copied files and directories get the
skeleton's mode with the write bits added, then masked by the umask
(``(mode | 0222) & 0777 & ~umask``); symlinks are copied as symlinks;
other file types are skipped.
"""

import os
import pwd
import stat  # already loaded by os (posixpath): free

from otpme_auth import ConversationError, PluginError, flag, hookimpl, octal_mode, path
from otpme_auth.keys import HOME_DIRECTORY

NAME = "mkhomedir"
DEFAULT_SKEL = "/etc/skel"
DEFAULT_LOGIN_DEFS = "/etc/login.defs"
DEFAULT_UMASK = 0o022
PARENT_MODE = 0o755
MAX_DEPTH = 64
_CHUNK = 1 << 16
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


@hookimpl
def otpme_auth_declare_options():
    """create_home (enables the plugin), home_skel, umask, login_defs."""
    return [
        flag("create_home", "create the user's home directory at login if it is missing",
             enables=True),
        path("home_skel", DEFAULT_SKEL, "skeleton directory copied into a new home"),
        octal_mode("umask", None, "umask for the new home and what is copied into it "
                   "(default: UMASK from login_defs, else 0022)"),
        path("login_defs", DEFAULT_LOGIN_DEFS, "file to read UMASK and HOME_MODE from"),
    ]


@hookimpl
def otpme_auth_post_login(ctx, options):
    """Create the home after a successful authentication (auth line).

    Does nothing if the home exists.  Raises :class:`PluginError` if it cannot
    be created (the login then fails closed).
    """
    ensure_home(ctx, options)


@hookimpl
def otpme_auth_open_session(ctx, options):
    """Create the home when the session opens (session line).

    PAM opens sessions only for authenticated users.  Raising makes
    pam_open_session fail with PAM_SESSION_ERR.
    """
    ensure_home(ctx, options)


# ---------------------------------------------------------------------------


class HomeError(Exception):
    """Creating the home failed; the text is one line for the log (PluginError at the hook)."""


def _fail(message):
    return PluginError(NAME, message)


def ensure_home(ctx, options):
    """Create ``ctx.user``'s home if it is missing; put its path in ``ctx.stash[HOME_DIRECTORY]``.

    :returns: True if it was created now.
    :raises PluginError: with one line for the log, when it cannot be created.
    """
    try:
        return _ensure_home(ctx, options)
    except HomeError as exc:
        ctx.tell_user("Your home directory could not be created.")  # shown with show_errors
        raise _fail(str(exc)) from None


def _ensure_home(ctx, options):
    try:
        entry = pwd.getpwnam(ctx.user)
    except KeyError:
        raise HomeError("cannot create a home for %r: no such user in the passwd database"
                        % ctx.user) from None
    home = home_path(entry.pw_dir, ctx.user)
    try:
        st = os.lstat(home)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise HomeError("cannot check home directory %s: %s" % (home, exc.strerror)) from None
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            ctx.log.warning("home directory %s of %s is a symlink: not following it, "
                            "not creating anything" % (home, ctx.user), NAME)
        elif not stat.S_ISDIR(st.st_mode):
            ctx.log.warning("home directory %s of %s exists and is not a directory: "
                            "leaving it alone" % (home, ctx.user), NAME)
        else:
            ctx.stash[HOME_DIRECTORY] = home
            ctx.log.debug("home directory %s exists" % home, NAME)
        return False

    umask, home_mode = modes(options)
    skel, skel_required = options.home_skel, options.given("home_skel")
    try:
        ctx.conversation.info("Creating directory '%s'." % home)
    except ConversationError as exc:
        ctx.log.debug("could not tell the user: %s" % exc, NAME)
    created = create_home(home, entry.pw_uid, entry.pw_gid, skel, skel_required, umask,
                          home_mode, ctx.log)
    if created is None:
        return False  # another login made it meanwhile; what it is, we did not check
    ctx.log.info("created home directory %s for %s (mode %04o, umask %04o%s)" % (
        home, ctx.user, home_mode, umask, ", from %s" % skel if created == "skel" else ""),
        NAME)
    ctx.stash[HOME_DIRECTORY] = home
    return True


def home_path(pw_dir, user):
    """The home from the passwd entry: absolute, without ``.``/``..`` components."""
    if not pw_dir.startswith("/"):
        raise HomeError("home directory %r of %r is not an absolute path" % (pw_dir, user))
    parts = [p for p in pw_dir.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise HomeError("home directory %r of %r contains . or .. components" % (pw_dir, user))
    return "/" + "/".join(parts)


# ---------------------------------------------------------------------------
# umask and HOME_MODE


def modes(options):
    """``(umask, home_mode)`` from the options and login.defs, as pam_mkhomedir computes them."""
    defs = read_login_defs(options.login_defs)
    if options.umask is not None:
        umask = options.umask & 0o777
    elif "UMASK" in defs:
        umask = parse_mode(defs["UMASK"], "UMASK", options.login_defs) & 0o777
    else:
        umask = DEFAULT_UMASK
    home_mode = 0
    if "HOME_MODE" in defs:
        home_mode = parse_mode(defs["HOME_MODE"], "HOME_MODE", options.login_defs)
    # As mkhomedir_helper: HOME_MODE 0 (or unset) means "derive it from the umask".
    return umask, home_mode or (0o777 & ~umask)


def read_login_defs(filename, keys=("UMASK", "HOME_MODE")):
    """The first value of each of ``keys`` in a login.defs(5) file (absent file: none)."""
    values = {}
    try:
        with open(filename, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                words = line.split()
                if len(words) >= 2 and words[0] in keys and words[0] not in values:
                    values[words[0]] = words[1].strip('"')
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise HomeError("cannot read %s: %s" % (filename, exc.strerror)) from None
    return values


def parse_mode(text, key, filename):
    """An octal mode as login.defs writes it (``022``, ``0750``; ``0x`` hex accepted)."""
    try:
        if text[:2] in ("0x", "0X"):
            value = int(text[2:], 16)
        elif text and all(c in "01234567" for c in text):
            value = int(text, 8)
        else:
            raise ValueError
    except ValueError:
        value = -1
    if not 0 <= value <= 0o7777:
        raise HomeError("bad %s %r in %s: must be an octal mode such as 022" % (key, text[:20], filename))
    return value


# ---------------------------------------------------------------------------
# Creating the home


def create_home(home, uid, gid, skel, skel_required, umask, home_mode, log):
    """Create ``home`` for ``uid:gid`` from ``skel``, never following a symlink inside it.

    :returns: ``"skel"`` or ``"empty"`` when created, ``None`` if it appeared
        meanwhile (a concurrent login created it: that one finishes the job).
    :raises HomeError: on any failure, after removing what was created.
    """
    parent, name = home.rsplit("/", 1)
    parent_fd = open_parents(parent or "/", log)
    try:
        try:
            os.mkdir(name, 0o700, dir_fd=parent_fd)
        except FileExistsError:
            log.info("home directory %s appeared while creating it: leaving it alone" % home, NAME)
            return None
        except OSError as exc:
            raise HomeError("cannot create home directory %s: %s" % (home, exc.strerror)) from None
        home_fd = ours = None
        try:
            home_fd = os.open(name, _DIR | os.O_NOFOLLOW, dir_fd=parent_fd)
            st = os.fstat(home_fd)
            # Only a writable-by-others parent lets anyone swap our directory;
            # check we hold the empty root-owned one we just made.
            if st.st_uid != os.geteuid() or st.st_nlink != 2 or st.st_mode & 0o077:
                raise HomeError("home directory %s was replaced while being created" % home)
            ours = (st.st_dev, st.st_ino)
            os.fchmod(home_fd, 0o700)  # whatever the process umask made of it
            filled = "empty"
            skel_fd = open_skel(skel, skel_required, log)
            if skel_fd is not None:
                try:
                    copy_tree(skel_fd, home_fd, skel, uid, gid, umask, 0)
                finally:
                    os.close(skel_fd)
                filled = "skel"
            # Last: give the home away.  chown before chmod, so no mode bit is lost.
            os.fchown(home_fd, uid, gid)
            os.fchmod(home_fd, home_mode)
            return filled
        except BaseException as exc:
            removed = ours is not None and remove_partial(parent_fd, name, ours, home, log)
            if not isinstance(exc, (OSError, HomeError)):
                raise
            reason = exc.strerror or str(exc) if isinstance(exc, OSError) else str(exc)
            raise HomeError("cannot create home directory %s: %s%s" % (
                home, reason, "; removed the partial home" if removed else "")) from None
        finally:
            if home_fd is not None:
                os.close(home_fd)
    finally:
        os.close(parent_fd)


def open_parents(parent, log):
    """Open the home's parent, creating missing components root-owned 0755.

    Existing components are the administrator's (``/home`` may be a symlink,
    as pam_mkhomedir allows); what we create we open with ``O_NOFOLLOW``.
    """
    fd = os.open("/", _DIR)
    try:
        done = ""
        for part in [p for p in parent.split("/") if p]:
            done += "/" + part
            made = False
            try:
                next_fd = os.open(part, _DIR, dir_fd=fd)
            except FileNotFoundError:
                try:
                    os.mkdir(part, PARENT_MODE, dir_fd=fd)
                    made = True
                except FileExistsError:
                    pass  # a concurrent login made it
                next_fd = os.open(part, _DIR | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = next_fd
            if made:
                os.fchmod(fd, PARENT_MODE)  # not whatever the process umask made of it
                log.info("created parent directory %s" % done, NAME)
        st = os.fstat(fd)
        if st.st_mode & 0o022 and not st.st_mode & 0o1000:
            log.warning("parent directory %s of the home is writable by others" % parent, NAME)
        return fd
    except OSError as exc:
        os.close(fd)
        raise HomeError("cannot create parent directory %s: %s" % (parent, exc.strerror)) from None


def open_skel(skel, required, log):
    """Open the skeleton directory, or ``None`` for an empty home.

    A missing skeleton is an error only when ``home_skel`` was given.  The
    skeleton must be root's: a user who can write into it could hard-link a
    file they may not read (``/etc/shadow``) and have us copy it to them.
    """
    try:
        fd = os.open(skel, _DIR)
    except FileNotFoundError:
        if required:
            raise HomeError("skeleton directory %s does not exist" % skel) from None
        log.info("no skeleton directory %s: creating an empty home" % skel, NAME)
        return None
    except OSError as exc:
        raise HomeError("cannot open skeleton directory %s: %s" % (skel, exc.strerror)) from None
    try:
        check_skel_dir(os.fstat(fd), skel)
    except BaseException:
        os.close(fd)
        raise
    return fd


def check_skel_dir(st, where):
    if st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o022:
        raise HomeError("skeleton directory %s must be owned by root and writable by no one else"
                        % where)


def copy_tree(src_fd, dst_fd, src_path, uid, gid, umask, depth):
    """Copy the skeleton directory ``src_fd`` into ``dst_fd``, giving each entry to ``uid:gid``.

    Every call is relative to a directory fd; sources are read with
    ``O_NOFOLLOW`` (a skeleton symlink becomes a symlink, never its target),
    destinations are created with ``O_EXCL`` in a directory nobody else can
    write yet.
    """
    if depth > MAX_DEPTH:
        raise HomeError("skeleton %s is nested deeper than %d directories" % (src_path, MAX_DEPTH))
    with os.scandir(src_fd) as it:
        names = sorted(e.name for e in it)
    for name in names:
        where = src_path.rstrip("/") + "/" + name
        try:
            copy_entry(src_fd, dst_fd, name, where, uid, gid, umask, depth)
        except OSError as exc:
            raise HomeError("cannot copy %s: %s" % (where, exc.strerror or exc)) from None


def copy_entry(src_fd, dst_fd, name, where, uid, gid, umask, depth):
    """Copy one skeleton entry (a symlink as a symlink, a directory recursively, a file)."""
    st = os.stat(name, dir_fd=src_fd, follow_symlinks=False)
    mode = (st.st_mode | 0o222) & 0o777 & ~umask
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(name, dir_fd=src_fd)
        os.symlink(target, name, dir_fd=dst_fd)
        os.chown(name, uid, gid, dir_fd=dst_fd, follow_symlinks=False)
    elif stat.S_ISDIR(st.st_mode):
        sub_src = os.open(name, _DIR | os.O_NOFOLLOW, dir_fd=src_fd)
        try:
            check_skel_dir(os.fstat(sub_src), where)
            os.mkdir(name, 0o700, dir_fd=dst_fd)
            sub_dst = os.open(name, _DIR | os.O_NOFOLLOW, dir_fd=dst_fd)
            try:
                copy_tree(sub_src, sub_dst, where, uid, gid, umask, depth + 1)
                os.fchown(sub_dst, uid, gid)
                os.fchmod(sub_dst, mode)
            finally:
                os.close(sub_dst)
        finally:
            os.close(sub_src)
    elif stat.S_ISREG(st.st_mode):
        copy_file(src_fd, dst_fd, name, uid, gid, mode)
    # Devices, FIFOs, sockets: not something to hand out (pam_mkhomedir skips them too).


def copy_file(src_fd, dst_fd, name, uid, gid, mode):
    # O_NONBLOCK: if the entry was swapped for a FIFO, open must not hang the login.
    src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=src_fd)
    try:
        if not stat.S_ISREG(os.fstat(src).st_mode):
            return
        dst = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                      0o600, dir_fd=dst_fd)
        try:
            while True:
                chunk = os.read(src, _CHUNK)
                if not chunk:
                    break
                view = memoryview(chunk)
                while view:
                    view = view[os.write(dst, view):]
            os.fchown(dst, uid, gid)
            os.fchmod(dst, mode)
        finally:
            os.close(dst)
    finally:
        os.close(src)


def remove_partial(parent_fd, name, ours, home, log):
    """Remove the home we were creating (identified by ``ours``), never following a symlink."""
    try:
        fd = os.open(name, _DIR | os.O_NOFOLLOW, dir_fd=parent_fd)
        try:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) != ours:
                log.error("not removing %s: it is no longer the directory we created" % home, NAME)
                return False
            _empty(fd, 0)
        finally:
            os.close(fd)
        os.rmdir(name, dir_fd=parent_fd)
    except OSError as exc:
        log.error("could not remove the partial home directory %s: %s; remove it by hand"
                  % (home, exc.strerror or exc), NAME)
        return False
    return True


def _empty(dir_fd, depth):
    if depth > MAX_DEPTH + 1:
        raise OSError("nested too deep")
    with os.scandir(dir_fd) as it:
        names = [e.name for e in it]
    for name in names:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            fd = os.open(name, _DIR | os.O_NOFOLLOW, dir_fd=dir_fd)
            try:
                _empty(fd, depth + 1)
            finally:
                os.close(fd)
            os.rmdir(name, dir_fd=dir_fd)
        else:
            os.unlink(name, dir_fd=dir_fd)
