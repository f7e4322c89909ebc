"""sessionkeep: keep the login session, and restore it on the next offline login.

Enabled by the bare word ``sessionkeep``.

* After an **online** login whose answer (``ctx.stash[LOGIN_ANSWER]``, written
  by online) has ``session.keep`` true (the token's ``enable_session_keep``):
  the session (id, expiry, user, token, when it started) is written to the
  user's runtime dir, ``session_dir`` (default
  ``/run/user/%u/otpme-auth/session``, ``%u`` = the uid), replacing any
  previous one.
* After an **offline** login: the offline plugin put the cached answer, with
  the session it kept, in ``LOGIN_ANSWER``; if that session has not expired it
  is restored to the same file.
* Either way ``ctx.stash[GREETING]`` says which ("... a new session was
  started" / "... your session from <time> was restored"), for the greeting
  plugin's ``online_greeting`` / ``offline_greeting``; name ``sessionkeep``
  before those on the line, as post-login hooks run in line order.

The directory and file belong to the user (0700 / 0600) and are written
through :mod:`otpme_auth.statefile`: no symlink is ever followed, a file of
another owner or with a wider mode is refused, the replacement is atomic.
A session that cannot be written is logged; it never fails the login.

When the server refuses this host (``HOST_DISABLED``, set by online on
``host_disabled`` / ``host_unknown``), every kept session file this line's
``session_dir`` names is removed in ``login_failed`` (the ``%u`` component
matched by any uid), so none is restored offline later; without a usable
offline cache none could be, but a cache of another line must not bring one
back either.  Directories are opened without following symlinks.
"""

from otpme_auth import StateFileError, hookimpl, path
from otpme_auth.keys import GREETING, LOGIN_ANSWER

from .keys import HOST_DISABLED

NAME = "sessionkeep"
DEFAULT_SESSION_DIR = "/run/user/%u/otpme-auth/session"


@hookimpl
def otpme_auth_declare_options():
    return [
        path("session_dir", DEFAULT_SESSION_DIR,
             "file the kept session is written to; %u is the user's uid (directories 0700, file "
             "0600, owned by the user)"),
    ]


@hookimpl
def otpme_auth_post_login(ctx, options):
    answer = ctx.stash.get(LOGIN_ANSWER)
    session = answer.get("session") if isinstance(answer, dict) else None
    if not isinstance(session, dict) or not session.get("keep") or not session.get("id"):
        return None
    import time
    now = time.time()
    expires = session.get("expires")
    if not isinstance(expires, (int, float)) or expires <= now:
        ctx.log.info("the kept session of %s has expired; not restored" % ctx.user, NAME)
        return None
    started = session.get("started")
    if not isinstance(started, (int, float)):
        started = now
    record = {"id": session["id"], "expires": expires, "started": started,
              "user": answer.get("user", ctx.user), "token": answer.get("token"),
              "restored": bool(ctx.offline), "written": now}
    for key in ("realm", "shares", "auto_mount"):
        if key in answer:
            record[key] = answer[key]
    try:
        where = write_session(ctx.user, options.session_dir, record)
    except (StateFileError, KeyError, ValueError) as exc:
        ctx.log.warning("session of %s not kept: %s" % (ctx.user, exc), NAME)
        return None
    base = ctx.stash.get(GREETING)
    base = base.strip() if isinstance(base, str) and base.strip() else "Welcome, %s." % ctx.user
    if ctx.offline:
        ctx.stash[GREETING] = "%s You are logged in offline; your session from %s was restored." % (
            base, time.strftime("%Y-%m-%d %H:%M", time.localtime(started)))
    else:
        ctx.stash[GREETING] = "%s A new session was started." % base
    ctx.log.info("session of %s %s (%s)" % (ctx.user, "restored" if ctx.offline else "kept", where),
                 NAME)
    return None


@hookimpl
def otpme_auth_login_failed(ctx, options, decision):
    why = ctx.stash.get(HOST_DISABLED)
    if not why:
        return None
    try:
        removed = drop_sessions(options.session_dir)
    except (StateFileError, ValueError, OSError) as exc:
        ctx.log.error("the server refused this host (%s), but the kept sessions could not all be "
                      "removed: %s" % (why, exc), NAME)
        return None
    ctx.log.warning("the server refused this host (%s): %d kept session(s) removed"
                    % (why, len(removed)), NAME)
    return None


def drop_sessions(session_dir):
    """Remove every kept session file ``session_dir`` names (``%u``: any uid); the paths."""
    import errno
    import glob
    import os

    from otpme_auth.statefile import open_dir
    if not os.path.isabs(session_dir) or ".." in session_dir.split("/"):
        raise ValueError("session_dir %s must be an absolute path without '..'" % session_dir)
    parts = session_dir.split("/")
    pattern = "/".join(glob.escape(p).replace("%u", "[0-9]*") for p in parts)
    removed, failed = [], None
    for candidate in sorted(glob.glob(pattern)):
        uids = [c for p, c in zip(parts, candidate.split("/")) if "%u" in p]
        if len(set(uids)) > 1 or session_dir.replace("%u", uids[0] if uids else "") != candidate \
                or (uids and not uids[0].isdigit()):
            continue   # matched a name that is not this template with one uid
        try:
            fd = open_dir(os.path.dirname(candidate))   # no symlink in any component
        except StateFileError as exc:
            failed = failed or exc
            continue
        try:
            os.unlink(os.path.basename(candidate), dir_fd=fd)
            removed.append(candidate)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                failed = failed or exc
        finally:
            os.close(fd)
    if failed is not None:
        raise failed
    return removed


def session_path(user, session_dir):
    """(path, uid, gid) of ``user``'s session file; KeyError for an unknown user."""
    import pwd
    entry = pwd.getpwnam(user)
    return session_dir.replace("%u", str(entry.pw_uid)), entry.pw_uid, entry.pw_gid


def write_session(user, session_dir, record):
    """Write ``record`` (a dict) as the user's session file, atomically; returns the path."""
    import json
    import os

    from otpme_auth.statefile import StateFile
    target, uid, gid = session_path(user, session_dir)
    if not os.path.isabs(target) or ".." in target.split("/"):
        raise ValueError("session_dir %s must be an absolute path without '..'" % target)
    _make_dirs(os.path.dirname(target), os.path.dirname(session_dir), uid, gid)
    data = json.dumps(record, sort_keys=True).encode() + b"\n"
    with StateFile.lock(target, owner=uid, group=gid, allowed_mode=0o600,
                        create_mode=0o600) as state:
        state.replace(data)
    return target


def _make_dirs(directory, template, uid, gid):
    """Create the missing directories of ``directory``, never through a symlink.

    Components from the first one holding ``%u`` in ``template`` down are the
    user's (0700, owned by the user, checked even when they exist); missing
    ones above it are created root-owned 0755 (a shared parent such as
    ``/var/lib/otpme-auth/sessions``).  Existing components above are only walked.
    """
    import errno
    import os

    from otpme_auth.statefile import ensure_dir, open_dir
    parts = [p for p in directory.split("/") if p]
    marked = [i for i, p in enumerate(template.split("/")[1:]) if "%u" in p]
    user_from = marked[0] + 1 if marked else len(parts)   # 1-based count of components
    existing = 0
    for i in range(len(parts), 0, -1):
        try:
            os.close(open_dir("/" + "/".join(parts[:i])))
            existing = i
            break
        except StateFileError as exc:
            if getattr(exc, "errno", None) != errno.ENOENT:   # missing: go up; else refuse
                raise
    for i in range(1, len(parts) + 1):
        mine = i >= user_from
        if i <= existing and not mine:
            continue
        if mine:
            ensure_dir("/" + "/".join(parts[:i]), mode=0o700, owner=uid, group=gid)
        else:
            ensure_dir("/" + "/".join(parts[:i]), mode=0o755, owner=0, group=0)
