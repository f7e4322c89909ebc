"""State files: read safely, update atomically, under an exclusive lock.

Plugins keep small per-user state in files (a google-authenticator secret
file, an OCRA credential file, the offline cache).  A PAM module runs as root
in front of users who control their own home directories, and many logins of
one user may run at once.  So every access here:

* walks the path one component at a time with ``O_NOFOLLOW``: no symlink is
  followed anywhere in the path, so a user cannot point us at another file;
* checks what it opened (a regular file, the expected owner, no mode bits
  beyond those allowed) on the open descriptor, not on the path;
* locks the file with ``flock`` and re-checks after locking that the path
  still names the same inode (another writer may have replaced it), so
  read-modify-write cycles of concurrent logins never lose an update;
* replaces the file atomically: a temp file in the same directory, fsync,
  owner and mode set, ``rename`` over the old one, fsync of the directory.
  A crash or a full disk leaves the old file or the new one, never a mix
  and never a truncated file.

Use::

    with StateFile.lock(path, owner=uid) as state:
        data = state.data          # bytes, or None if the file does not exist
        state.replace(new_bytes)   # atomic; keeps owner and mode
"""

import fcntl
import os
import stat

from .errors import StateFileError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_LIMIT = 1 << 20  # state files are small; a huge one is an attack or a mistake


def open_dir(path):
    """Open directory ``path`` without following a symlink in any component."""
    if not os.path.isabs(path):
        raise StateFileError("%s: the path must be absolute" % path)
    fd = os.open("/", _DIR_FLAGS)
    try:
        for part in [p for p in path.split("/") if p]:
            if part == "..":
                raise StateFileError("%s: '..' is not allowed in a state file path" % path)
            try:
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise _error(path, exc, "open the directory") from None
            os.close(fd)
            fd = nxt
        return fd
    except BaseException:
        os.close(fd)
        raise


def _error(path, exc, doing):
    err = _message(path, exc, doing)
    err.errno = exc.errno
    return err


def _message(path, exc, doing):
    import errno  # only on this error path: a login that goes well does not load it
    reason = {
        errno.ELOOP: "it is a symlink, which is never followed",
        errno.ENOTDIR: "a component is not a directory (or is a symlink)",
        errno.ENOSPC: "the filesystem is full; nothing was changed",
        errno.EDQUOT: "the disk quota is exceeded; nothing was changed",
        errno.EROFS: "the filesystem is read-only; nothing was changed",
        errno.EACCES: "permission denied",
        errno.ENOENT: "it does not exist",
    }.get(exc.errno, exc.strerror or str(exc))
    return StateFileError("cannot %s %s: %s" % (doing, path, reason))


def check_stat(path, st, owner=None, allowed_mode=0o600):
    """Refuse anything but a regular file of ``owner`` with no bits beyond ``allowed_mode``.

    ``owner`` is a uid, a collection of allowed uids, or None (any owner).
    """
    if not stat.S_ISREG(st.st_mode):
        raise StateFileError("%s is not a regular file" % path)
    owners = (owner,) if isinstance(owner, int) else owner
    if owners is not None and st.st_uid not in owners:
        raise StateFileError("%s must be owned by uid %s, not %d" % (
            path, " or ".join(str(o) for o in sorted(owners)), st.st_uid))
    extra = stat.S_IMODE(st.st_mode) & ~allowed_mode
    if extra:
        raise StateFileError("%s has mode %04o; it must not have %04o (allowed: %04o)"
                             % (path, stat.S_IMODE(st.st_mode), extra, allowed_mode))
    if st.st_nlink != 1:
        raise StateFileError("%s has %d hard links; a state file must have one"
                             % (path, st.st_nlink))


def read(path, owner=None, allowed_mode=0o600):
    """The bytes of a state file, or None if it does not exist (checked, not locked)."""
    dir_fd = open_dir(os.path.dirname(path))
    try:
        fd = _open_file(path, dir_fd)
        if fd is None:
            return None
        try:
            check_stat(path, os.fstat(fd), owner, allowed_mode)
            return _read_all(path, fd)
        finally:
            os.close(fd)
    finally:
        os.close(dir_fd)


def _open_file(path, dir_fd):
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY \
        | os.O_NONBLOCK  # a FIFO planted in place of the file must not hang the login
    try:
        return os.open(os.path.basename(path), flags, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _error(path, exc, "open") from None


def _read_all(path, fd):
    chunks, size = [], 0
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > _READ_LIMIT:
            raise StateFileError("%s is larger than %d bytes" % (path, _READ_LIMIT))
        chunks.append(chunk)


class StateFile:
    """An open, locked state file; use :meth:`lock` in a ``with`` statement."""

    def __init__(self, path, owner=None, group=None, allowed_mode=0o600, create_mode=0o600,
                 timeout=10.0):
        self.path = path
        self.name = os.path.basename(path)
        self.owner = owner
        self.group = group
        self.allowed_mode = allowed_mode
        self.create_mode = create_mode
        self.timeout = timeout
        self.data = None
        self._dir_fd = None
        self._fd = None
        self._lock_fd = None

    @classmethod
    def lock(cls, path, **kw):
        """Open and exclusively lock ``path`` (it may not exist yet)."""
        return cls(path, **kw)

    def __enter__(self):
        self._dir_fd = open_dir(os.path.dirname(self.path))
        try:
            self._acquire()
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(self, *exc):
        self._release()
        return False

    def _acquire(self):
        import time
        deadline = time.monotonic() + self.timeout
        while True:
            fd = _open_file(self.path, self._dir_fd)
            if fd is None:
                # No file yet: lock the directory so two creators serialise.
                lock_fd = os.dup(self._dir_fd)
            else:
                lock_fd = fd
            self._flock(lock_fd, deadline)
            # Did another writer replace the file while we waited?
            current = _open_file(self.path, self._dir_fd)
            same = (fd is None and current is None) or (
                fd is not None and current is not None
                and _same_inode(os.fstat(fd), os.fstat(current)))
            if current is not None:
                os.close(current)
            if same:
                self._fd, self._lock_fd = fd, lock_fd
                if fd is not None:
                    check_stat(self.path, os.fstat(fd), self.owner, self.allowed_mode)
                    self.data = _read_all(self.path, fd)
                return
            os.close(lock_fd)
            if fd is not None and fd != lock_fd:
                os.close(fd)

    def _flock(self, fd, deadline):
        import time
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise StateFileError("%s: timed out waiting for the lock held by another "
                                         "login" % self.path) from None
                time.sleep(0.005)

    def replace(self, data):
        """Atomically make the file hold ``data`` (keeps owner and mode; fsyncs).

        The new file is locked before it is renamed into place, so we still
        hold the lock of whatever the path names afterwards.
        """
        if self._dir_fd is None:
            raise StateFileError("replace() outside of 'with StateFile.lock(...)'")
        if self._fd is not None:
            st = os.fstat(self._fd)
            uid, gid, mode = st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)
        else:
            uid = self.owner if self.owner is not None else os.geteuid()
            gid = self.group if self.group is not None else os.getegid()
            mode = self.create_mode
        # One fixed name: we hold the lock, so no one else writes it, and a
        # killed writer's leftover is simply replaced.
        tmp = ".%s.tmp" % self.name
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            try:
                fd = os.open(tmp, flags, 0o600, dir_fd=self._dir_fd)
            except FileExistsError:
                os.unlink(tmp, dir_fd=self._dir_fd)
                fd = os.open(tmp, flags, 0o600, dir_fd=self._dir_fd)
        except OSError as exc:
            raise _error(self.path, exc, "write") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
            if (uid, gid) != (os.geteuid(), os.getegid()):
                os.fchown(fd, uid, gid)
            os.fchmod(fd, mode)
            os.rename(tmp, self.name, src_dir_fd=self._dir_fd, dst_dir_fd=self._dir_fd)
        except OSError as exc:
            os.close(fd)
            try:
                os.unlink(tmp, dir_fd=self._dir_fd)
            except OSError:
                pass
            raise _error(self.path, exc, "update") from None
        os.fsync(self._dir_fd)
        for old in {self._fd, self._lock_fd} - {None}:
            os.close(old)
        self._fd = self._lock_fd = fd
        self.data = bytes(data)

    def _release(self):
        for fd in {self._lock_fd, self._fd, self._dir_fd} - {None}:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fd = self._lock_fd = self._dir_fd = None


def remove(path, owner=None, allowed_mode=0o600):
    """Delete a state file under its lock (checked like any other access); False if absent."""
    with StateFile.lock(path, owner=owner, allowed_mode=allowed_mode) as state:
        if state.data is None:
            return False
        try:
            os.unlink(state.name, dir_fd=state._dir_fd)
        except OSError as exc:
            raise _error(path, exc, "remove") from None
        os.fsync(state._dir_fd)
        return True


def ensure_dir(path, mode=0o700, owner=0, group=0):
    """Make sure directory ``path`` exists with ``mode`` and ``owner``, never via a symlink.

    Creates it (and nothing above it) if missing; refuses an existing one of
    another owner or with bits beyond ``mode``.
    """
    parent_fd = open_dir(os.path.dirname(path.rstrip("/")) or "/")
    name = os.path.basename(path.rstrip("/"))
    try:
        try:
            os.mkdir(name, mode, dir_fd=parent_fd)
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
            try:
                if (owner, group) != (os.geteuid(), os.getegid()):
                    os.fchown(fd, owner, group)
                os.fchmod(fd, mode)
            finally:
                os.close(fd)
        except FileExistsError:
            pass
        except OSError as exc:
            raise _error(path, exc, "create the directory") from None
        try:
            st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        except OSError as exc:
            raise _error(path, exc, "check the directory") from None
        if not stat.S_ISDIR(st.st_mode):
            raise StateFileError("%s is not a directory (a symlink is never followed)" % path)
        if st.st_uid != owner:
            raise StateFileError("%s must be owned by uid %d, not %d" % (path, owner, st.st_uid))
        if stat.S_IMODE(st.st_mode) & ~mode:
            raise StateFileError("%s has mode %04o; it must not have more than %04o"
                                 % (path, stat.S_IMODE(st.st_mode), mode))
    finally:
        os.close(parent_fd)


def _same_inode(a, b):
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
