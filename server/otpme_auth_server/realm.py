"""Administrative operations on a realm's objects (used by the admin CLI and tests).

Every function takes an open :class:`~otpme_auth_server.store.Conn` and runs in
the caller's transaction; it raises NotFound / AlreadyExists / InvalidValue with a
message naming the object, never with a secret in it.
"""

import base64
import os
import re
import time
import urllib.parse

from cryptography.hazmat.primitives.serialization import load_ssh_public_key

from .crypto import Passwords, SecretBox, random_jotp, random_password, random_pin
from .errors import InvalidValue
from .protocol import HOST_RE, NAME_RE

TOKEN_TYPES = ("password", "totp", "hotp", "hmac", "ssh")
PIN_LEN_MIN, PIN_LEN_MAX, PIN_LEN_DEFAULT = 4, 12, 4
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_UNITS = {"s": 1, "m": 60, "h": 3600, "D": 86400, "W": 7 * 86400}

BUILTIN_POLICIES = {
    "workhours_login": {"type": "logintimes", "times": ["mon-fri 07:00-19:00"]},
    "weekend_login": {"type": "logintimes", "times": ["sat-sun 00:00-24:00"]},
    # Parameters the client's strength checker uses for check_offline_pass_strength=auto.
    "password_strength": {"type": "password_strength", "min_length": 8, "min_score": 0,
                          "dictionaries": ["common-passwords"]},
}


def parse_duration(value: str) -> int:
    """Seconds of ``30s``, ``1m``, ``2h``, ``3D``, ``1W`` (a leading ``+`` is allowed)."""
    m = re.fullmatch(r"\+?(\d{1,6})([smhDW])", value)
    if not m:
        raise InvalidValue(f"duration {value!r} is not a number followed by s, m, h, D or W")
    return int(m.group(1)) * _UNITS[m.group(2)]


def check_name(kind: str, name: str) -> str:
    """Validate an object name; InvalidValue naming the object otherwise."""
    pattern = HOST_RE if kind == "host" else NAME_RE
    if not pattern.fullmatch(name):
        raise InvalidValue(f"{kind} name {name!r} is not valid (letters, digits, . _ @ -)")
    return name


def split_token(name: str) -> tuple[str, str]:
    """``user/token`` -> (user, token)."""
    user, sep, tok = name.partition("/")
    if not sep or not NAME_RE.fullmatch(user) or not NAME_RE.fullmatch(tok):
        raise InvalidValue(f"token {name!r} must be written USER/TOKEN")
    return user, tok


def init_realm(c) -> None:
    """Create the built-in objects of a new realm (access group LOGIN, policies)."""
    with c.transaction():
        if c.get("accessgroup", "LOGIN") is None:
            c.insert("accessgroup", "LOGIN", {"max_fail": 5, "max_fail_reset": 0, "policies": []})
        for name, data in BUILTIN_POLICIES.items():
            if c.get("policy", name) is None:
                c.insert("policy", name, data)


# -- users ---------------------------------------------------------------------

def user_add(c, name: str) -> dict:
    check_name("user", name)
    data = {"enabled": True, "auto_disable": 0, "auto_mount": False, "shares": [],
            "policies": [], "created": int(time.time())}
    c.insert("user", name, data)
    return data


def user_set(c, name: str, **changes) -> dict:
    user = c.need("user", name)
    user.update(changes)
    c.update("user", name, user)
    return user


def user_del(c, name: str) -> None:
    c.need("user", name)
    for tok, _ in c.list("token", owner=name):
        _token_remove_refs(c, tok)
        c.delete("token", tok)
        c.execute("DELETE FROM otp_state WHERE token = ?", (tok,))
    c.execute("DELETE FROM fail_state WHERE username = ?", (name,))
    c.delete("user", name)


def auto_disable_value(value: str, now: float | None = None) -> int:
    """``0`` (off) or ``+N{m,h,D,W}`` -> absolute Unix time (0 = never)."""
    if value in ("0", "off", "never"):
        return 0
    return int((now or time.time()) + parse_duration(value))


def user_unblock(c, name: str, group: str | None = None) -> int:
    c.need("user", name)
    if group:
        c.need("accessgroup", group)
        cur = c.execute("DELETE FROM fail_state WHERE username = ? AND accessgroup = ?", (name, group))
    else:
        cur = c.execute("DELETE FROM fail_state WHERE username = ?", (name,))
    return cur.rowcount


def user_list_add(c, name: str, field: str, value: str) -> None:
    user = c.need("user", name)
    if value in user[field]:
        raise InvalidValue(f"user '{name}' has {field[:-1]} '{value}' already")
    if field == "policies":
        c.need("policy", value)
    user[field].append(value)
    c.update("user", name, user)


def user_list_remove(c, name: str, field: str, value: str) -> None:
    user = c.need("user", name)
    if value not in user[field]:
        raise InvalidValue(f"user '{name}' has no {field[:-1]} '{value}'")
    user[field].remove(value)
    c.update("user", name, user)


def blocks(c, name: str) -> list[tuple[str, int, float]]:
    """(access group, fails, last failure) rows of a user."""
    return [tuple(r) for r in c.all(
        "SELECT accessgroup, fails, last_fail FROM fail_state WHERE username = ? ORDER BY accessgroup",
        (name,))]


# -- tokens --------------------------------------------------------------------

def token_add(c, box: SecretBox, passwords: Passwords, name: str, ttype: str, *,
              password: str | None = None, public_key: str | None = None,
              digits: int = 6, period: int = 30, algorithm: str = "SHA1",
              secret: bytes | None = None, realm: str = "otpme-auth",
              pin: bool | str | None = None, pin_len: int = PIN_LEN_DEFAULT,
              slot: int = 2) -> dict:
    """Create a token; returns what to show the administrator once.

    The returned dict may hold the generated password, the otpauth URI, the HMAC
    secret or the generated PIN: the caller prints it and forgets it; nothing of it
    is stored in clear.  ``pin`` (TOTP/HOTP only): True generates one of ``pin_len``
    digits, a string sets it, None/False gives a token that takes the bare code.
    """
    user, _ = split_token(name)
    c.need("user", user)
    if ttype not in TOKEN_TYPES:
        raise InvalidValue(f"token type {ttype!r} is not one of {', '.join(TOKEN_TYPES)}")
    if digits not in (6, 7, 8):
        raise InvalidValue(f"token '{name}': digits must be 6, 7 or 8")
    if algorithm not in ("SHA1", "SHA256", "SHA512"):
        raise InvalidValue(f"token '{name}': algorithm must be SHA1, SHA256 or SHA512")
    if not 10 <= period <= 300:
        raise InvalidValue(f"token '{name}': period must be 10..300 seconds")
    data = {"type": ttype, "enabled": True, "auto_disable": 0, "offline": False,
            "session_keep": False, "policies": [], "created": int(time.time())}
    shown = {}
    if ttype == "password":
        generated = password is None
        password = password if password is not None else random_password()
        data.update({"hash": passwords.hash(password), "2f_token": None, "2f_enabled": False})
        if generated:
            shown["password"] = password
    elif ttype in ("totp", "hotp"):
        secret = secret or os.urandom(20)
        data.update({"secret": box.seal(secret, name), "digits": digits, "algorithm": algorithm})
        b32 = base64.b32encode(secret).decode().rstrip("=")
        label = urllib.parse.quote(f"{realm}:{name}", safe=":@")
        params = {"secret": b32, "issuer": realm, "digits": digits, "algorithm": algorithm}
        if ttype == "totp":
            data["period"] = period
            params["period"] = period
        else:
            params["counter"] = 0
        shown["uri"] = f"otpauth://{ttype}/{label}?{urllib.parse.urlencode(params)}"
        shown["secret"] = b32
        data.update({"pin_hash": None, "pin_len": 0, "pin_enabled": False})
        if pin:
            generated = _set_pin(box, passwords, name, data, None if pin is True else pin, pin_len)
            if generated:
                shown["pin"] = generated
    elif ttype == "hmac":
        if slot not in (1, 2):
            raise InvalidValue(f"token '{name}': the YubiKey slot must be 1 or 2")
        if secret is not None and len(secret) != 20:
            raise InvalidValue(f"token '{name}': an HMAC-SHA1 secret is 20 bytes (40 hex digits)")
        if secret is None:  # an imported secret is not shown again
            secret = os.urandom(20)
            shown["secret"] = secret.hex()
        data["secret"] = box.seal(secret, name)
        data["slot"] = slot
    elif ttype == "ssh":
        if not public_key:
            raise InvalidValue(f"token '{name}': an ssh token needs the public key")
        data["public_key"] = normalize_ssh_key(name, public_key)
    if pin and ttype not in ("totp", "hotp"):
        raise InvalidValue(f"token '{name}': only totp and hotp tokens have a PIN")
    c.insert("token", name, data, owner=user)
    # TOTP counts steps, HOTP counts counters; -1 means nothing used yet.
    c.execute("DELETE FROM otp_state WHERE token = ?", (name,))
    c.execute("INSERT INTO otp_state (token, last_counter) VALUES (?, ?)", (name, -1))
    return shown


def normalize_ssh_key(name: str, text: str) -> str:
    parts = text.strip().split()
    if len(parts) < 2:
        raise InvalidValue(f"token '{name}': the public key must be in OpenSSH format")
    try:
        load_ssh_public_key(f"{parts[0]} {parts[1]}".encode())
    except (ValueError, TypeError):
        raise InvalidValue(f"token '{name}': the public key does not parse") from None
    if not parts[0].startswith(("ssh-ed25519", "ecdsa-sha2-", "ssh-rsa")):
        raise InvalidValue(f"token '{name}': key type {parts[0]} is not supported")
    return f"{parts[0]} {parts[1]}"


def token_set(c, name: str, **changes) -> dict:
    split_token(name)
    tok = c.need("token", name)
    tok.update(changes)
    c.update("token", name, tok)
    return tok


def token_password(c, passwords: Passwords, name: str, password: str | None) -> str | None:
    """Set a password token's password; returns the generated one when none was given."""
    tok = c.need("token", name)
    if tok["type"] != "password":
        raise InvalidValue(f"token '{name}' is a {tok['type']} token, not a password token")
    generated = None
    if password is None:
        password = generated = random_password()
    tok["hash"] = passwords.hash(password)
    c.update("token", name, tok)
    return generated


def _set_pin(box, passwords, name, tok, pin, length) -> str | None:
    """Hash ``pin`` (or a generated one) into ``tok`` and enable it; returns the generated PIN."""
    generated = None
    if pin is None:
        if not PIN_LEN_MIN <= length <= PIN_LEN_MAX:
            raise InvalidValue(f"token '{name}': PIN length must be {PIN_LEN_MIN}..{PIN_LEN_MAX}")
        pin = generated = random_pin(length)
    elif not (pin.isascii() and pin.isdigit() and PIN_LEN_MIN <= len(pin) <= PIN_LEN_MAX):
        raise InvalidValue(f"token '{name}': a PIN is {PIN_LEN_MIN} to {PIN_LEN_MAX} digits")
    # The length is not secret: the server needs it to split PIN from code.
    tok.update({"pin_hash": box.pin_input(name, pin), "pin_len": len(pin),
                "pin_enabled": True})
    return generated


def token_pin(c, box: SecretBox, passwords: Passwords, name: str, pin: str | None,
              length: int = PIN_LEN_DEFAULT) -> str | None:
    """Set (and enable) an OTP token's PIN; returns the generated one when none was given."""
    tok = c.need("token", name)
    if tok["type"] not in ("totp", "hotp"):
        raise InvalidValue(f"token '{name}' is a {tok['type']} token; only totp and hotp tokens have a PIN")
    generated = _set_pin(box, passwords, name, tok, pin, length)
    c.update("token", name, tok)
    return generated


def token_enable_pin(c, name: str, on: bool) -> None:
    tok = c.need("token", name)
    if tok["type"] not in ("totp", "hotp"):
        raise InvalidValue(f"token '{name}' is a {tok['type']} token; only totp and hotp tokens have a PIN")
    if on and not tok.get("pin_hash"):
        raise InvalidValue(f"token '{name}' has no PIN; set one with 'token pin {name}'")
    tok["pin_enabled"] = on
    c.update("token", name, tok)


def token_second_factor(c, name: str, second: str | None) -> None:
    """Make token ``second`` (of the same user, totp or hotp) the second factor of ``name``."""
    user, _ = split_token(name)
    tok = c.need("token", name)
    if tok["type"] != "password":
        raise InvalidValue(f"token '{name}': only password tokens take a second factor")
    if second is not None:
        full = second if "/" in second else f"{user}/{second}"
        if split_token(full)[0] != user:
            raise InvalidValue(f"token '{name}': the second factor must belong to user '{user}'")
        other = c.need("token", full)
        if other["type"] not in ("totp", "hotp"):
            raise InvalidValue(f"token '{full}' is a {other['type']} token; a second factor must be totp or hotp")
        second = full
    tok["2f_token"] = second
    if second is None:
        tok["2f_enabled"] = False
    c.update("token", name, tok)


def token_enable_2f(c, name: str, on: bool) -> None:
    tok = c.need("token", name)
    if on and not tok.get("2f_token"):
        raise InvalidValue(f"token '{name}' has no second factor token; set one with 2f_token first")
    tok["2f_enabled"] = on
    c.update("token", name, tok)


def _token_remove_refs(c, name: str) -> None:
    for kind in ("host", "role"):
        for oname, obj in c.list(kind):
            if name in obj.get("tokens", []):
                obj["tokens"].remove(name)
                c.update(kind, oname, obj)


def token_del(c, name: str) -> None:
    user, _ = split_token(name)
    c.need("token", name)
    for other, tok in c.list("token", owner=user):
        if tok.get("2f_token") == name:
            raise InvalidValue(f"token '{name}' is the second factor of token '{other}'; "
                               f"run 'token 2f_token {other} none' first")
    _token_remove_refs(c, name)
    c.delete("token", name)
    c.execute("DELETE FROM otp_state WHERE token = ?", (name,))


# -- hosts, roles, access groups, policies --------------------------------------

def host_add(c, box: SecretBox, name: str) -> str:
    """Create a host and return its join one-time password (shown once, stored keyed-hashed)."""
    check_name("host", name)
    c.insert("host", name, {"enabled": True, "unlimited": False, "tokens": [], "roles": [],
                            "policies": [], "cert": None, "accessgroup": None,
                            "password_policy": "password_strength"})
    return host_new_jotp(c, box, name)


def host_new_jotp(c, box: SecretBox, name: str) -> str:
    c.need("host", name)
    jotp = random_jotp()
    c.execute("DELETE FROM joins WHERE host = ?", (name,))
    c.execute("INSERT INTO joins (host, digest) VALUES (?, ?)", (name, box.join_digest(name, jotp)))
    return jotp


def host_del(c, name: str) -> None:
    c.delete("host", name)
    # A host added again under the same name starts without the old one's shares.
    for sname, share in c.list("share"):
        if name in share.get("nodes", []):
            share["nodes"].remove(name)
            c.update("share", sname, share)
    c.execute("DELETE FROM joins WHERE host = ?", (name,))


def member_add(c, kind: str, name: str, field: str, value: str) -> None:
    """Add a token, role or policy to a host, role or access group."""
    obj = c.need(kind, name)
    target_kind = {"tokens": "token", "roles": "role", "policies": "policy"}[field]
    if target_kind == "token":
        split_token(value)
    c.need(target_kind, value)
    if kind == "role" and field == "roles":
        if value == name or name in role_closure(c, value):
            raise InvalidValue(f"role '{value}' cannot be a member of role '{name}' (cycle)")
    if value in obj.setdefault(field, []):
        raise InvalidValue(f"{kind} '{name}' has {target_kind} '{value}' already")
    obj[field].append(value)
    c.update(kind, name, obj)


def member_remove(c, kind: str, name: str, field: str, value: str) -> None:
    obj = c.need(kind, name)
    if value not in obj.get(field, []):
        target_kind = {"tokens": "token", "roles": "role", "policies": "policy"}[field]
        raise InvalidValue(f"{kind} '{name}' has no {target_kind} '{value}'")
    obj[field].remove(value)
    c.update(kind, name, obj)


def role_closure(c, name: str) -> set[str]:
    """``name`` and every role nested in it, transitively."""
    seen, todo = set(), [name]
    while todo:
        r = todo.pop()
        if r in seen:
            continue
        seen.add(r)
        obj = c.get("role", r)
        if obj:
            todo.extend(obj.get("roles", []))
    return seen


def role_add(c, name: str) -> None:
    check_name("role", name)
    c.insert("role", name, {"tokens": [], "roles": [], "shares": []})


def role_del(c, name: str) -> None:
    c.need("role", name)
    for kind in ("host", "role"):
        for oname, obj in c.list(kind):
            if name in obj.get("roles", []):
                obj["roles"].remove(name)
                c.update(kind, oname, obj)
    c.delete("role", name)


def accessgroup_add(c, name: str) -> None:
    check_name("accessgroup", name)
    c.insert("accessgroup", name, {"max_fail": 5, "max_fail_reset": 0, "policies": []})


def parse_times(spec: str) -> list[str]:
    """Validate ``mon-fri 07:00-19:00[; sat 10:00-12:00]`` and return the normalised list."""
    out = []
    for part in spec.split(";"):
        m = re.fullmatch(r"\s*([a-z]{3})(?:-([a-z]{3}))?\s+(\d\d):(\d\d)-(\d\d):(\d\d)\s*", part.lower())
        if not m or m.group(1) not in DAYS or (m.group(2) and m.group(2) not in DAYS):
            raise InvalidValue(f"login time {part.strip()!r} is not like 'mon-fri 07:00-19:00'")
        h1, m1, h2, m2 = (int(m.group(i)) for i in (3, 4, 5, 6))
        if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2) or (h1, m1) >= (h2, m2):
            raise InvalidValue(f"login time {part.strip()!r}: the range is not a valid time of day")
        days = m.group(1) + (f"-{m.group(2)}" if m.group(2) else "")
        out.append(f"{days} {h1:02d}:{m1:02d}-{h2:02d}:{m2:02d}")
    return out


def policy_add(c, name: str, ptype: str, times: str | None = None, min_length: int = 8) -> None:
    check_name("policy", name)
    if ptype == "logintimes":
        if not times:
            raise InvalidValue(f"policy '{name}': a logintimes policy needs --times")
        c.insert("policy", name, {"type": "logintimes", "times": parse_times(times)})
    elif ptype == "password_strength":
        c.insert("policy", name, {"type": "password_strength", "min_length": min_length,
                                  "min_score": 0, "dictionaries": ["common-passwords"]})
    else:
        raise InvalidValue(f"policy type {ptype!r} is not logintimes or password_strength")


def policy_del(c, name: str) -> None:
    c.need("policy", name)
    for kind in ("user", "token", "host", "accessgroup"):
        for oname, obj in c.list(kind):
            if name in obj.get("policies", []):
                obj["policies"].remove(name)
                c.update(kind, oname, obj)
    c.delete("policy", name)


def times_allow(times: list[str], weekday: int, minute: int) -> bool:
    """True when (weekday 0=Mon, minute of day) falls in one of the ``times`` ranges."""
    for spec in times:
        days, rng = spec.split(" ")
        d1, _, d2 = days.partition("-")
        a, b = DAYS.index(d1), DAYS.index(d2 or d1)
        in_days = a <= weekday <= b if a <= b else (weekday >= a or weekday <= b)
        start, end = rng.split("-")
        s = int(start[:2]) * 60 + int(start[3:])
        e = int(end[:2]) * 60 + int(end[3:])
        if in_days and s <= minute < e:
            return True
    return False


# -- shares ----------------------------------------------------------------------
#
# A share is an object (seed 001 §24): what to mount, how, and which hosts ("nodes") may
# mount it.  Users and roles refer to shares by name; the login answer carries the
# definitions of the user's shares that the host may mount (docs/protocol.md).  Nothing
# in a share is secret: mount credentials are never stored in one (options that carry a
# password are refused), so a share may sit in the offline cache in the clear.

SHARE_TYPES = ("nfs", "cifs", "sshfs", "bind", "tmpfs")
#: the force_* settings and the share types whose mount helper can apply them
SHARE_FORCE = {"force_group": ("cifs", "sshfs"), "force_create_mode": ("cifs",),
               "force_directory_mode": ("cifs",)}
_SHARE_SOURCE = {
    "nfs": (re.compile(r"[A-Za-z0-9.\-\[\]:]+:/[^\s,]*"), "HOST:/PATH"),
    "cifs": (re.compile(r"//[A-Za-z0-9.\-\[\]:]+/[^\s,]+"), "//HOST/SHARE"),
    "sshfs": (re.compile(r"(?:(?:%u|[A-Za-z0-9._][A-Za-z0-9._-]*)@)?[A-Za-z0-9.\-\[\]:]+:[^\s,]*"),
              "[USER@]HOST:[PATH]"),
    "bind": (re.compile(r"/[^\s,]*"), "an absolute path"),
    "tmpfs": (re.compile(r"tmpfs"), "tmpfs"),
}
_OPTION_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:/=+-]{0,127}")
#: option names that would put a secret (or its file) into a share that travels in the clear
_SECRET_OPTIONS = ("password", "pass", "credentials", "cred", "password2", "passwd",
                   "password_stdin", "passfile", "identityfile", "ssh_command", "sshfs_sync",
                   "ssh_protocol", "directport")
_MOUNTPOINT_RE = re.compile(r"[A-Za-z0-9%._/@+-]{1,255}")
_GROUP_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}|\d{1,10}")


def parse_share_options(name: str, text: str | None) -> list[str]:
    """``a,b=c`` -> ["a", "b=c"]; refuses options carrying a secret and odd characters."""
    if not text:
        return []
    out = []
    for opt in text.split(","):
        opt = opt.strip()
        if not _OPTION_RE.fullmatch(opt):
            raise InvalidValue(f"share '{name}': mount option {opt[:40]!r} is not valid "
                               "(letters, digits and _ . : / = + -)")
        key = opt.split("=", 1)[0].lower()
        if key in _SECRET_OPTIONS:
            raise InvalidValue(f"share '{name}': option '{key}' would store a secret in the share; "
                               "mount credentials never go into a share (docs/automount.md)")
        out.append(opt)
    return out


def _check_mountpoint(name: str, template: str) -> str:
    if not _MOUNTPOINT_RE.fullmatch(template) or ".." in template.split("/"):
        raise InvalidValue(f"share '{name}': mount point {template[:60]!r} is not valid (a path "
                           "of letters, digits, % . _ / @ + -, no '..'; %u = user, %s = share)")
    return template


def share_add(c, name: str, stype: str, source: str | None, options: str | None = None,
              mountpoint: str | None = None, ro: bool = False) -> dict:
    check_name("share", name)
    if stype not in SHARE_TYPES:
        raise InvalidValue(f"share '{name}': type {stype!r} is not one of {', '.join(SHARE_TYPES)}")
    if stype == "tmpfs" and not source:
        source = "tmpfs"
    pattern, form = _SHARE_SOURCE[stype]
    if not source or not pattern.fullmatch(source) or len(source) > 1024:
        raise InvalidValue(f"share '{name}': a {stype} share needs --source {form}")
    data = {"type": stype, "source": source, "options": parse_share_options(name, options),
            "mountpoint": _check_mountpoint(name, mountpoint) if mountpoint else None,
            "ro": bool(ro), "nodes": [], "force_group": None, "force_create_mode": None,
            "force_directory_mode": None, "created": int(time.time())}
    c.insert("share", name, data)
    return data


def share_del(c, name: str) -> None:
    c.need("share", name)
    for kind in ("user", "role"):
        for oname, obj in c.list(kind):
            if name in obj.get("shares", []):
                obj["shares"].remove(name)
                c.update(kind, oname, obj)
    c.delete("share", name)


def share_node(c, name: str, host: str, add: bool) -> None:
    share = c.need("share", name)
    if add:
        c.need("host", host)
        if host in share["nodes"]:
            raise InvalidValue(f"share '{name}' has node '{host}' already")
        share["nodes"].append(host)
    else:
        if host not in share["nodes"]:
            raise InvalidValue(f"share '{name}' has no node '{host}'")
        share["nodes"].remove(host)
    c.update("share", name, share)


def share_force(c, name: str, field: str, value: str) -> None:
    """Set (``none``: clear) force_group / force_create_mode / force_directory_mode."""
    share = c.need("share", name)
    if share["type"] not in SHARE_FORCE[field]:
        raise InvalidValue(f"share '{name}': {field} is not supported by {share['type']} shares "
                           f"(only {', '.join(SHARE_FORCE[field])})")
    if value == "none":
        share[field] = None
    elif field == "force_group":
        if not _GROUP_RE.fullmatch(value):
            raise InvalidValue(f"share '{name}': force_group {value[:40]!r} is not a group name or GID")
        share[field] = value
    else:
        if not re.fullmatch(r"0?[0-7]{3,4}", value) or int(value, 8) > 0o7777:
            raise InvalidValue(f"share '{name}': {field} {value[:20]!r} is not an octal mode like 0770")
        share[field] = "%04o" % int(value, 8)
    c.update("share", name, share)


def share_grant(c, kind: str, name: str, share: str, add: bool) -> None:
    """``user add_share`` / ``role add_share``: refer to a share object by name.

    Users of releases before shares were objects hold free-form names; such a name keeps
    working as a reference as soon as a share object of that name exists, and can always
    be removed; a new one must name an existing share."""
    obj = c.need(kind, name)
    shares = obj.setdefault("shares", [])
    if add:
        if c.get("share", share) is None:
            raise InvalidValue(f"share '{share}' does not exist: shares are objects now; create "
                               f"it with 'share add {share} --type TYPE --source ...' first")
        if share in shares:
            raise InvalidValue(f"{kind} '{name}' has share '{share}' already")
        shares.append(share)
    else:
        if share not in shares:
            raise InvalidValue(f"{kind} '{name}' has no share '{share}'")
        shares.remove(share)
    c.update(kind, name, obj)


def share_for_host(name: str, share: dict) -> dict:
    """What the login answer carries of one share (public data only)."""
    return {"name": name, "type": share["type"], "source": share["source"],
            "options": list(share.get("options", [])), "mountpoint": share.get("mountpoint"),
            "ro": bool(share.get("ro")), "force_group": share.get("force_group"),
            "force_create_mode": share.get("force_create_mode"),
            "force_directory_mode": share.get("force_directory_mode")}


# -- RADIUS clients (issue 14): the NASes (switches, FreeRADIUS proxies) that may ask -----------

def client_add(c, box, name: str, address: str) -> str:
    """Add a RADIUS client; returns its generated shared secret (shown once, stored sealed)."""
    import ipaddress
    import secrets
    check_name("client", name)
    if not address:
        raise InvalidValue(f"client '{name}': give --address CIDR (e.g. 192.0.2.0/24)")
    try:
        network = ipaddress.ip_network(address, strict=False)
    except ValueError:
        raise InvalidValue(f"client '{name}': --address {address!r} is not an address or CIDR") from None
    if network.prefixlen == 0:
        raise InvalidValue(f"client '{name}': --address {network} would admit every address")
    secret = secrets.token_hex(16)   # 32 characters FreeRADIUS takes without quoting rules
    c.insert("client", name, {"address": str(network), "accessgroup": None,
                              "secret": box.seal(secret.encode(), "radius-client:" + name),
                              "created": int(time.time())})
    return secret


def client_secret(c, box, name: str) -> str:
    """The client's shared secret, for radius-config (never printed by show)."""
    return box.open(c.need("client", name)["secret"], "radius-client:" + name).decode()
