"""Migration from pam_yubico's challenge-response mode: ``otpme-auth import-pam-yubico``.

pam_yubico (``mode=challenge-response``) keeps, per user and YubiKey, one line of state in
``~USER/.yubico/challenge-SERIAL`` (``challenge`` when the serial is not visible) or, with
``chalresp_path=DIR``, in ``DIR/USER-SERIAL`` (``DIR/USER``); its documentation uses
``/var/yubico/challenges``. The line is one of (hex in lower case)::

    v1:<challenge, 2-126 hex>:<expected response, 40 hex>:<slot 1|2>
    v2:<challenge, 2-126 hex>:<PBKDF2 of the response, 40 hex>:<salt, 64 hex>:<iterations>:<slot 1|2>

The challenge is 63 random bytes; the response is the card's HMAC-SHA1 (20 bytes). In v2
the second field is PBKDF2-HMAC-SHA1 (password: the response's 40 lower-case hex
characters; the salt's 32 bytes; the iterations, 10000 by default; 20 bytes), in v1 the
response itself.

The command (root) checks the file and every directory above it (below), parses it, and
stages it root-only in the offline cache directory (``USER/pam-yubico``, 0600, written
through the locked, atomic state files). At the user's next successful **online** login
whose server answer allows an offline cache, with the card connected, the card answers
the staged challenge; if the answer matches (compared in constant time), the card gets an
offline cache of its own (token ``USER/pam_yubico-SERIAL``, keyed and rotated like any
card token's: cardlogin.py) holding that login's answer, and the staged state is removed.
A card that does not match leaves the staged state and logs why.

Permissions (pam_yubico checks none: its issues #116, #146): the file is opened without
following a symlink, must be a regular file owned by the user or root, not writable by
group or others; every directory from ``/`` to it must be owned by root or the user and
not writable by group or others (a sticky, world-writable directory is refused too). A v1
file (the expected response in the clear) readable by group or others is refused: anyone
who read it could answer for the card once.
"""

import os
import stat

NAME = "offline"
STAGED = "pam-yubico"
MAX_ITERATIONS = 1_000_000


class NotImportable(Exception):
    """The file cannot be imported (one line, never a secret)."""


def parse(text):
    """The state of one pam_yubico file: dict(version, challenge, response, salt,
    iterations, slot); ValueError naming the bad part."""
    line = text.strip()
    if "\n" in line or not line.isascii():
        raise ValueError("not one line of ASCII")
    parts = line.split(":")
    version = parts[0]
    if version == "v1" and len(parts) == 4:
        challenge, response, slot = parts[1:]
        salt, iterations = "", 0
    elif version == "v2" and len(parts) == 6:
        challenge, response, salt, iterations, slot = parts[1:]
    else:
        raise ValueError("neither v1:CHALLENGE:RESPONSE:SLOT nor "
                         "v2:CHALLENGE:HASH:SALT:ITERATIONS:SLOT")
    hexdigits = set("0123456789abcdef")
    for name, value, lengths in (("challenge", challenge, range(2, 127, 2)),
                                 ("response", response, (40,)),
                                 ("salt", salt, (0,) if version == "v1" else range(2, 129, 2))):
        if len(value) not in lengths or not set(value) <= hexdigits:
            raise ValueError("the %s is not %s lower-case hex digits" % (
                name, "40" if name == "response" else "an even number of"))
    if version == "v2":
        if not iterations.isdigit() or not 1 <= int(iterations) <= MAX_ITERATIONS:
            raise ValueError("the iterations are not 1-%d" % MAX_ITERATIONS)
    if slot not in ("1", "2"):
        raise ValueError("the slot is not 1 or 2")
    return {"version": version, "challenge": challenge, "response": response, "salt": salt,
            "iterations": int(iterations), "slot": int(slot)}


def matches(state, answer_hex):
    """Whether the card's answer (40 lower-case hex) is the one the state expects."""
    import hashlib
    import hmac
    if state["version"] == "v2":
        got = hashlib.pbkdf2_hmac("sha1", answer_hex.encode("ascii"),
                                  bytes.fromhex(state["salt"]), state["iterations"], 20).hex()
    else:
        got = answer_hex
    return hmac.compare_digest(got.encode("ascii"), state["response"].encode("ascii"))


def _check_dirs(path, uid):
    """Every directory from / to ``path``'s parent: root's or the user's, not writable by
    group or others (no symlink on the way: lstat)."""
    parts = os.path.dirname(os.path.abspath(path)).split(os.sep)
    current = os.sep
    for part in [p for p in parts if p] + [None]:
        st = os.lstat(current)
        if stat.S_ISLNK(st.st_mode):
            raise NotImportable("%s is a symlink, which is never followed" % current)
        if st.st_uid not in (0, uid):
            raise NotImportable("%s is owned by uid %d, not root or the user" % (current, st.st_uid))
        if st.st_mode & 0o022:
            raise NotImportable("%s is writable by group or others (mode %04o): anyone could "
                               "plant a challenge file there (pam_yubico issue #116)"
                               % (current, stat.S_IMODE(st.st_mode)))
        if part is None:
            break
        current = os.path.join(current, part)


def read_file(path, user):
    """The parsed state of ``path`` after the checks above, and the serial its name gives."""
    import pwd
    try:
        uid = pwd.getpwnam(user).pw_uid
    except KeyError:
        raise NotImportable("no local user %s" % user) from None
    _check_dirs(path, uid)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise NotImportable("cannot open %s: %s%s" % (path, exc.strerror, " (a symlink is never "
                           "followed)" if exc.errno == 40 else "")) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotImportable("%s is not a regular file" % path)
        if st.st_uid not in (0, uid):
            raise NotImportable("%s is owned by uid %d, not %s or root" % (path, st.st_uid, user))
        if st.st_mode & 0o022:
            raise NotImportable("%s is writable by group or others (mode %04o) (pam_yubico issue "
                               "#146)" % (path, stat.S_IMODE(st.st_mode)))
        data = os.read(fd, 4096)
    finally:
        os.close(fd)
    try:
        state = parse(data.decode("ascii"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise NotImportable("%s is not a pam_yubico challenge file: %s" % (
            path, exc if isinstance(exc, ValueError) else "not ASCII")) from None
    if state["version"] == "v1" and st.st_mode & 0o044:
        raise NotImportable("%s holds the expected response in the clear (v1) and is readable by "
                           "group or others (mode %04o): whoever read it can answer for the card; "
                           "log in once with pam_yubico to rewrite it as v2, or re-enrol"
                           % (path, stat.S_IMODE(st.st_mode)))
    name = os.path.basename(path)
    tail = name.rsplit("-", 1)[-1] if "-" in name else ""
    state["serial"] = int(tail) if tail.isdigit() else None
    return state


def candidates(user):
    """pam_yubico's usual places for ``user``'s state files."""
    import glob
    import pwd
    found = []
    try:
        home = pwd.getpwnam(user).pw_dir
        found += sorted(glob.glob(os.path.join(glob.escape(home), ".yubico", "challenge-*")))
        found += [p for p in [os.path.join(home, ".yubico", "challenge")] if os.path.lexists(p)]
    except KeyError:
        pass
    system = "/var/yubico/challenges"
    found += sorted(glob.glob(os.path.join(system, glob.escape(user) + "-*")))
    found += [p for p in [os.path.join(system, user)] if os.path.lexists(p)]
    return found


# -- the staged state in the offline cache directory ------------------------------------

def stage(cache, user, state):
    import json
    udir = cache._user_dir(user, create=True)
    with cache._lock(os.path.join(udir, STAGED)) as locked:
        locked.replace(json.dumps(state, sort_keys=True).encode("ascii"))


def staged(cache, user):
    """The staged pam_yubico state of ``user``, or None."""
    import json
    from otpme_auth.statefile import read
    udir = cache._user_dir(user, create=False)
    if udir is None:
        return None
    data = read(os.path.join(udir, STAGED), owner=cache.owner, allowed_mode=0o600)
    if data is None:
        return None
    state = json.loads(data)
    if not isinstance(state, dict):
        raise ValueError("the staged pam_yubico state is not an object")
    parsed = parse(":".join([state["version"], state["challenge"], state["response"]]
                            + ([state["salt"], str(state["iterations"])]
                               if state["version"] == "v2" else []) + [str(state["slot"])]))
    parsed["serial"] = state.get("serial") if isinstance(state.get("serial"), int) else None
    return parsed


def unstage(cache, user):
    from otpme_auth.statefile import remove
    udir = cache._user_dir(user, create=False)
    if udir is not None:
        remove(os.path.join(udir, STAGED), owner=cache.owner, allowed_mode=0o600)


# -- the command ----------------------------------------------------------------------

def add_command(subparsers, dir_arg):
    p = subparsers.add_parser(
        "import-pam-yubico", help="take USER's pam_yubico challenge-response state into the "
        "offline cache at their next successful online login with that YubiKey")
    p.add_argument("user", help="the local user name")
    p.add_argument("--file", help="the state file (default: the one of ~USER/.yubico/challenge-* "
                   "or /var/yubico/challenges/USER-*)")
    dir_arg(p)
    p.set_defaults(run=cmd_import)


def cmd_import(args, out):
    from .cache import OfflineCache
    from .tool import ToolError
    if os.geteuid() != 0:
        raise ToolError("import-pam-yubico writes the root-only offline cache: run it as root")
    paths = [args.file] if args.file else candidates(args.user)
    if not paths:
        raise ToolError("no pam_yubico state for %s (~%s/.yubico/challenge-*, "
                        "/var/yubico/challenges/%s-*): give --file" % ((args.user,) * 3))
    if len(paths) > 1:
        raise ToolError("several pam_yubico states for %s (%s): choose one with --file"
                        % (args.user, ", ".join(paths)))
    try:
        state = read_file(paths[0], args.user)
        stage(OfflineCache(args.cache_dir), args.user, state)
    except NotImportable as exc:
        raise ToolError(str(exc)) from None
    except Exception as exc:   # StateFileError, CacheError: one line
        raise ToolError("cannot stage it: %s" % exc) from None
    out.write("pam_yubico state of %s (%s, %s, YubiKey %s, slot %d) staged: taken into the "
              "offline cache at %s's next successful online login with that YubiKey connected. "
              "Remove pam_yubico from the PAM stack and %s afterwards.\n" % (
                  args.user, paths[0], state["version"], state["serial"] or "of unknown serial",
                  state["slot"], args.user, paths[0]))
    return 0


# -- at the next successful online login ------------------------------------------------

def convert(ctx, cache, answer, entries, write):
    """Post-login: turn the staged state into a card-token cache if the card matches.

    ``write(token, slot, serial, entry)`` keys and writes the cache (cardlogin).  Returns
    the token name written, or None.  Never fails the login.
    """
    from .keys import HMAC_RESPONDER, SMARTCARD
    try:
        state = staged(cache, ctx.user)
    except Exception as exc:
        ctx.log.warning("staged pam_yubico state of %s unreadable: %s" % (ctx.user, exc), NAME)
        return None
    if state is None:
        return None
    respond, card = ctx.stash.get(HMAC_RESPONDER), ctx.stash.get(SMARTCARD) or {}
    own = [e for e in entries if e.get("token") == answer.get("token")]
    if respond is None:
        ctx.log.info("staged pam_yubico state of %s: no YubiKey connected; kept" % ctx.user, NAME)
        return None
    if not own:
        ctx.log.info("staged pam_yubico state of %s: the server allows no offline cache for "
                     "this login; kept" % ctx.user, NAME)
        return None
    if state["serial"] is not None and card.get("serial") not in (None, state["serial"]):
        ctx.log.warning("staged pam_yubico state of %s is for YubiKey %s, not %s; kept"
                        % (ctx.user, state["serial"], card.get("serial")), NAME)
        return None
    try:
        got = respond(state["slot"], bytes.fromhex(state["challenge"]))
    except OSError as exc:
        ctx.log.warning("staged pam_yubico state of %s: %s; kept" % (ctx.user, exc), NAME)
        return None
    if not matches(state, got.reveal()):
        ctx.log.warning("staged pam_yubico state of %s: YubiKey %s does not give the answer it "
                        "expects; kept" % (ctx.user, card.get("serial")), NAME)
        return None
    token = "%s/pam_yubico-%s" % (ctx.user, card.get("serial") or state["serial"] or "card")
    try:
        write(token, state["slot"], card.get("serial"), own[0])
        unstage(cache, ctx.user)
    except Exception as exc:
        ctx.log.warning("staged pam_yubico state of %s: cache not written: %s"
                        % (ctx.user, exc), NAME)
        return None
    ctx.log.warning("pam_yubico state of %s imported: YubiKey %s opens the offline cache of %s"
                    % (ctx.user, card.get("serial"), token), NAME)
    return token
