"""Session open/close: reference counting, safe mount points, options, timeouts."""

import errno
import os
import pwd
import re
import stat

from otpme_auth import StateFileError

from . import NAME, _dump, _load, _state
from .backends import BACKENDS, MountError, run_helper

#: options that relax a default: what they lift
RELAXING = {"suid": "nosuid", "dev": "nodev", "exec": "noexec"}
#: option names never taken from a share (they would carry or point at a secret)
_SECRET = ("password", "pass", "credentials", "cred", "passwd", "password2", "passfile",
           "identityfile", "ssh_command", "password_stdin")
_OPTION_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:/=+-]{0,127}")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


def _proc_start(pid):
    """The start time (clock ticks since boot) of ``pid``, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            text = f.read().decode("ascii", "replace")
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()[19]


def _me():
    pid = os.getpid()
    return {"pid": pid, "start": _proc_start(pid)}


def _alive(session):
    pid = session.get("pid")
    return isinstance(pid, int) and pid > 0 and _proc_start(pid) == session.get("start")


def mounted_targets():
    """Mount points of this mount namespace (``/proc/self/mountinfo``, unescaped)."""
    out = set()
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            field = line.split(b" ")[4].decode("utf-8", "surrogateescape")
            out.add(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field))
    return out


def open_session(ctx, options):
    user = ctx.user
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        ctx.log.warning("no shares mounted for %r: not in the passwd database" % user, NAME)
        return
    try:
        with _state(options, user) as st:
            data = _load(st)
            data["sessions"] = [s for s in data["sessions"] if _alive(s)]
            me = _me()
            if me not in data["sessions"]:
                data["sessions"].append(me)
            mounted = mounted_targets()
            data["mounts"] = [m for m in data["mounts"] if m.get("target") in mounted]
            have = {m["target"] for m in data["mounts"]}
            for share in data["shares"]:
                try:
                    target = mount_share(share, entry, options, have, ctx.log)
                except MountError as exc:
                    ctx.log.warning("share %s of %s not mounted: %s" % (
                        _safe_name(share), user, _clean(exc)), NAME)
                    continue
                if target:
                    data["mounts"].append({"share": share["name"], "target": target})
                    have.add(target)
                    ctx.log.info("share %s of %s mounted on %s" % (share["name"], user, target),
                                 NAME)
            st.replace(_dump(data))
    except (StateFileError, OSError, ValueError) as exc:
        ctx.log.warning("shares of %s not mounted: %s" % (user, exc), NAME)


def close_session(ctx, options):
    user = ctx.user
    try:
        with _state(options, user) as st:
            data = _load(st)
            me = _me()
            data["sessions"] = [s for s in data["sessions"] if _alive(s) and s != me]
            if not data["sessions"]:
                mounted = mounted_targets()
                left = []
                for m in reversed(data["mounts"]):
                    if m.get("target") not in mounted:
                        continue
                    try:
                        unmount(m["target"], options.automount_timeout)
                        ctx.log.info("share %s of %s unmounted from %s" % (
                            m.get("share"), user, m["target"]), NAME)
                    except MountError as exc:
                        left.append(m)
                        ctx.log.warning("share %s of %s not unmounted: %s" % (
                            m.get("share"), user, exc), NAME)
                data["mounts"] = left
            st.replace(_dump(data))
    except (StateFileError, OSError, ValueError) as exc:
        ctx.log.warning("shares of %s not unmounted: %s" % (user, exc), NAME)


def unmount(target, timeout):
    try:
        run_helper(["umount", target], timeout)
    except MountError:
        run_helper(["umount", "-l", target], timeout)


def _clean(text):
    """One printable line of ``text`` (paths and helper output come from elsewhere)."""
    return "".join(c if c.isprintable() else "?" for c in str(text))[:300]


def _safe_name(share):
    name = share.get("name") if isinstance(share, dict) else None
    return name if isinstance(name, str) and _NAME_RE.fullmatch(name) else "(unnamed)"


def mount_options(share, allowed):
    """The share's options with ``nosuid,nodev`` (and ``ro``) enforced."""
    allow = {o.strip() for o in (allowed or "").split(",") if o.strip()}
    opts = []
    relaxed = set()
    for o in share.get("options") or []:
        if not isinstance(o, str) or not _OPTION_RE.fullmatch(o):
            raise MountError("option %r is not valid" % str(o)[:40])
        key = o.split("=", 1)[0].lower()
        if key in _SECRET:
            raise MountError("option %s would carry a secret: refused" % key)
        if key in RELAXING and key in allow:
            relaxed.add(RELAXING[key])  # not permitted: the default stays
        if key in ("nosuid", "nodev") or key in RELAXING:
            continue
        opts.append(o)
    for o in ("nosuid", "nodev"):
        if o not in relaxed:
            opts.append(o)

    if share.get("ro"):
        opts = [o for o in opts if o != "rw"] + ["ro"]
    return opts


def mount_point(share, user, root_template):
    """Absolute mount point of ``share``; MountError when it is not inside the root."""
    root = os.path.normpath(root_template.replace("%u", user))
    template = share.get("mountpoint") or share["name"]
    if not isinstance(template, str) or not template or "\0" in template:
        raise MountError("the mount point is not a path")
    rel = template.replace("%u", user).replace("%s", share["name"])
    if ".." in rel.split("/"):
        raise MountError("mount point %s escapes %s ('..')" % (rel, root))
    target = os.path.normpath(rel if rel.startswith("/") else os.path.join(root, rel))
    if os.path.commonpath([root, target]) != root or target == root:
        raise MountError("mount point %s is outside %s (automount_root)" % (target, root))
    return root, target


_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def make_mount_point(root, target, entry):
    """Create ``target`` component by component, never through a symlink.

    Components above ``root`` must exist or are created root 0755; ``root`` and every
    directory between it and ``target`` are root's, 0755, not writable by anyone else (so
    the user cannot swap a component); ``target`` is the user's, 0700.  Any symlink, or a
    component owned by someone else / writable by others, refuses the share."""
    parts = [p for p in target.split("/") if p]
    nroot = len([p for p in root.split("/") if p])
    fd = os.open("/", _DIR)
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            inside = i + 1 >= nroot
            try:
                os.mkdir(part, 0o700 if last else 0o755, dir_fd=fd)
                created = True
            except FileExistsError:
                created = False
            try:
                nfd = os.open(part, _DIR, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise MountError("%s is a symlink or not a directory: refused" %
                                     ("/" + "/".join(parts[:i + 1]))) from None
                raise MountError("cannot open %s: %s" % ("/" + "/".join(parts[:i + 1]),
                                                         exc.strerror)) from None
            os.close(fd)
            fd = nfd
            where = "/" + "/".join(parts[:i + 1])
            if created:
                if last:
                    os.fchown(fd, entry.pw_uid, entry.pw_gid)
                    os.fchmod(fd, 0o700)
                else:
                    os.fchown(fd, 0, 0)
                    os.fchmod(fd, 0o755)
            st = os.fstat(fd)
            if last:
                if st.st_uid not in (0, entry.pw_uid):
                    raise MountError("%s belongs to uid %d: refused" % (where, st.st_uid))
            elif inside and (st.st_uid != 0 or st.st_mode & 0o022):
                raise MountError("%s must be root's and writable by root only: refused" % where)
        return fd
    except BaseException:
        os.close(fd)
        raise


def mount_share(share, entry, options, have, log):
    """Mount one share; returns its target, or None when it is mounted already."""
    if not isinstance(share, dict) or not _NAME_RE.fullmatch(str(share.get("name", ""))):
        raise MountError("the share has no valid name")
    backend = BACKENDS.get(share.get("type"))
    if backend is None:
        raise MountError("type %r is not supported" % str(share.get("type"))[:20])
    root, target = mount_point(share, entry.pw_name, options.automount_root)
    if target in have or target in mounted_targets():
        return None
    opts = mount_options(share, options.automount_allow_options)
    fd = make_mount_point(root, target, entry)
    try:
        source = str(share.get("source", "")).replace("%u", entry.pw_name)
        try:
            backend(share, source, target, opts, entry, options.automount_timeout)
        except MountError:
            # A helper killed half-way (sshfs mounts before its ssh has answered) may
            # leave a dead mount behind: detach it, so the share is cleanly absent.
            if target in mounted_targets():
                try:
                    run_helper(["umount", "-l", target], options.automount_timeout)
                except MountError as exc:
                    log.warning("share %s: %s" % (share["name"], exc), NAME)
            raise
    finally:
        os.close(fd)
    return target
