"""automount: mount the user's shares when a session opens, unmount at the last close.

Enabled by the bare word ``automount`` on the auth line (to note the login's shares) and
on the session line (to mount and unmount them).

* After a login (``post_login``) whose answer (``LOGIN_ANSWER``: the online answer, or the
  offline plugin's cached one, restored with the kept session) has ``auto_mount`` true,
  the share definitions it carries (``shares``, docs/protocol.md; public data, never a
  credential) are noted in a root-only state file ``automount_state_dir/USER``.
* ``open_session`` mounts every noted share not mounted yet, below ``automount_root``
  (default ``/media/otpme-auth/%u``), and records the session (its PID and the PID's start
  time) in the same file, under its lock.  ``close_session`` removes the session; the last
  one unmounts.  **Recovery:** every open and close first drops the sessions whose process
  is gone (PID absent, or reused: start time differs), so a crashed session is not counted
  past the next open or close of that user.
* Mount points are created one component at a time through directory file descriptors
  (``O_NOFOLLOW``): a symlink anywhere refuses the share; the last component is created
  0700 owned by the user.  A mount point outside ``automount_root`` is refused.
* ``nosuid,nodev`` are always added, unless the share asks for ``suid``/``dev``/``exec``
  AND ``automount_allow_options`` lists it.
* Each type is a small backend (:mod:`.backends`) calling the system's mount helper;
  no secret is ever put on a command line; a missing helper is one clear log line; every
  helper is killed after ``automount_timeout`` seconds, so a hung server never holds up
  the login longer.
A share that cannot be mounted is logged and skipped: the session still opens.
"""

import json
import os

from otpme_auth import Option, StateFileError, hookimpl, path, seconds
from otpme_auth.keys import LOGIN_ANSWER

NAME = "automount"
DEFAULT_ROOT = "/media/otpme-auth/%u"
DEFAULT_STATE_DIR = "/run/otpme-auth/automount"


@hookimpl
def otpme_auth_declare_options():
    return [
        path("automount_root", DEFAULT_ROOT,
             "directory the shares are mounted below (%u = user name); a share whose mount "
             "point is outside it is refused", placeholders=()),
        Option("automount_allow_options", _allow_options, "",
               "comma separated options a share may use to lift nosuid/nodev: suid, dev, exec "
               "(default: none)", kind="text"),
        seconds("automount_timeout", 10.0, "seconds one mount or unmount may take before its "
                "helper is killed", maximum=600),
        path("automount_state_dir", DEFAULT_STATE_DIR,
             "root-only directory of the per-user state files (sessions, mounts)"),
    ]


@hookimpl
def otpme_auth_post_login(ctx, options):
    answer = ctx.stash.get(LOGIN_ANSWER)
    if not isinstance(answer, dict):
        return None
    shares = answer.get("shares") if answer.get("auto_mount") else []
    shares = [s for s in shares or [] if isinstance(s, dict)]
    try:
        with _state(options, ctx.user) as st:
            data = _load(st)
            data["shares"] = shares
            st.replace(_dump(data))
    except (StateFileError, OSError, ValueError) as exc:
        ctx.log.warning("shares of %s not noted: %s" % (ctx.user, exc), NAME)
    return None


@hookimpl
def otpme_auth_open_session(ctx, options):
    from . import mounting
    mounting.open_session(ctx, options)


@hookimpl
def otpme_auth_close_session(ctx, options):
    from . import mounting
    mounting.close_session(ctx, options)


def _allow_options(value):
    names = [v.strip() for v in value.split(",") if v.strip()]
    bad = [n for n in names if n not in ("suid", "dev", "exec")]
    if bad:
        raise ValueError("%s: only suid, dev and exec may be allowed" % ", ".join(bad)[:60])
    return ",".join(names)


def _state(options, user):
    from otpme_auth.statefile import StateFile, ensure_dir
    if "/" in user or user in (".", "..") or not user:
        raise ValueError("user name %r cannot name a state file" % user)
    d = options.automount_state_dir
    ensure_dir(os.path.dirname(d.rstrip("/")), mode=0o755)
    ensure_dir(d, mode=0o700)
    return StateFile.lock(os.path.join(d, user), owner=0, group=0, allowed_mode=0o600,
                          create_mode=0o600)


def _load(st):
    if not st.data:
        return {"shares": [], "sessions": [], "mounts": []}
    data = json.loads(st.data)
    for k in ("shares", "sessions", "mounts"):
        data.setdefault(k, [])
    return data


def _dump(data):
    return json.dumps(data, sort_keys=True).encode() + b"\n"
