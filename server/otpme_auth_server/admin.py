"""``otpme-auth-admin --dir DIR OBJECT VERB ARGS``: manage a realm's objects.

The verbs follow OTPme's commands (seed 001).  A user mistake prints one line on
stderr and exits 2; no traceback.  Secrets never go on the command line: a
password is generated and shown once, or read from stdin with ``-``.
"""

import argparse
import datetime
import io
import os
import sys
import time

from . import config, realm
from .crypto import Passwords, SecretBox
from .errors import InvalidValue, ServerError
from .store import Store

USAGE = """objects and verbs:
  user   add NAME [--no-login-token] [--no-pin]  (login token NAME/login: TOTP with a PIN)
         del | show [NAME] | list | enable | disable
         auto_disable NAME +1m|+2h|+3D|+1W|0 | unblock NAME [ACCESSGROUP]
         enable_auto_mount | disable_auto_mount | add_share/remove_share NAME SHARE
         add_policy/remove_policy NAME POLICY
  token  add USER/TOKEN --type password|totp|hotp|hmac|ssh [SSH_PUBLIC_KEY]
         (hmac: [--slot 1|2] [-]: a fresh secret shown once, or an existing one from stdin)
         deploy USER/TOKEN [-] [--slot 1|2] [--touch] [--reader NAME]  (an hmac token
         whose fresh secret, or one from stdin, is written into the connected YubiKey)
         [--digits N] [--period S] [--algorithm SHA1] [--pin-len N | --no-pin]
         (totp/hotp get a PIN by default: typed PIN+code) | del | show [NAME] | list [USER]
         password NAME [-]  (generate, or read from stdin) | enable | disable
         pin NAME [-]  (new PIN: generate, or read from stdin) | enable_pin | disable_pin
         enable_offline | disable_offline | enable_session_keep | disable_session_keep
         2f_token NAME TOKEN | enable_2f | disable_2f | auto_disable NAME WHEN
         enable_standalone | disable_standalone  (a second factor may log in alone)
         add_policy/remove_policy NAME POLICY
  host   add NAME (shows the JOTP) | del/remove NAME | new_jotp | show [NAME] | list
         enable | disable | unlimit_logins | limit_logins | add_token/remove_token HOST TOKEN
         add_role/remove_role HOST ROLE | add_policy/remove_policy HOST POLICY
         accessgroup HOST GROUP | password_policy HOST POLICY
  role   add | del | show [NAME] | list | add_token/remove_token ROLE TOKEN
         add_role/remove_role ROLE MEMBER_ROLE | add_share/remove_share ROLE SHARE
  accessgroup add | del | show [NAME] | list | max_fail GROUP N | max_fail_reset GROUP 1m|0
         unblock GROUP USER | add_policy/remove_policy GROUP POLICY
  share  add NAME --type nfs|cifs|sshfs|bind|tmpfs --source SRC [--options a,b=c]
         [--mountpoint TEMPLATE (%u user, %s share)] [--ro] | del | show [NAME] | list
         add_node/remove_node SHARE HOST (the hosts that may mount it)
         force_group SHARE GROUP|none | force_create_mode/force_directory_mode SHARE 0770|none
  client add NAME --address CIDR (prints the shared secret once) | del | show [NAME] | list
         access_group CLIENT GROUP (RADIUS clients, docs/radius.md)
  policy add NAME --type logintimes --times 'mon-fri 07:00-19:00[; sat 09:00-12:00]'
         | add NAME --type password_strength [--min-length N] | del | show [NAME] | list"""


OBJECTS = ("user", "token", "host", "role", "accessgroup", "policy", "share", "client")

# Verbs that are data, not code: (object, verb) -> what they change and what they say.
#: one-argument on/off settings: (field, value, what is printed)
FLAGS = {
    ("user", "enable"): ("enabled", True, "enabled"),
    ("user", "disable"): ("enabled", False, "disabled"),
    ("user", "enable_auto_mount"): ("auto_mount", True, "enable_auto_mount"),
    ("user", "disable_auto_mount"): ("auto_mount", False, "disable_auto_mount"),
    ("token", "enable"): ("enabled", True, "enabled"),
    ("token", "disable"): ("enabled", False, "disabled"),
    ("token", "enable_standalone"): ("standalone", True, "logs in alone too, even while it "
                                     "is a password token's second factor"),
    ("token", "disable_standalone"): ("standalone", False, "logs in alone only while it is "
                                      "no password token's second factor"),
    ("token", "enable_offline"): ("offline", True, "offline enabled"),
    ("token", "disable_offline"): ("offline", False, "offline disabled"),
    ("token", "enable_session_keep"): ("session_keep", True, "session keep enabled"),
    ("token", "disable_session_keep"): ("session_keep", False, "session keep disabled"),
    ("host", "enable"): ("enabled", True, "enable"),
    ("host", "disable"): ("enabled", False, "disable"),
    ("host", "unlimit_logins"): ("unlimited", True, "unlimit_logins"),
    ("host", "limit_logins"): ("unlimited", False, "limit_logins"),
    ("host", "enable_unlimited_logins"): ("unlimited", True, "unlimit_logins"),
    ("host", "disable_unlimited_logins"): ("unlimited", False, "limit_logins"),
}
#: membership lists of hosts, roles, tokens and access groups: (object, verb) -> verb
MEMBERS = {(obj, verb): verb for obj, verbs in {
    "token": ("add_policy", "remove_policy"),
    "host": ("add_token", "remove_token", "add_role", "remove_role", "add_policy", "remove_policy"),
    "role": ("add_token", "remove_token", "add_role", "remove_role"),
    "accessgroup": ("add_policy", "remove_policy"),
}.items() for verb in verbs}
MEMBER_ARGS = {"token": "USER/TOKEN", "host": "HOST", "role": "ROLE", "accessgroup": "GROUP"}
#: a user's own lists: (object, verb) -> (field, noun)
USER_LISTS = {
    ("user", "add_policy"): ("policies", "policy"),
    ("user", "remove_policy"): ("policies", "policy"),
}


def _member_arg(verb):
    return {"token": "USER/TOKEN", "role": "ROLE", "policy": "POLICY"}[verb.split("_", 1)[1]]


class OutputLost(ServerError):
    """A change's output could not be written, so the change was not committed."""


class Admin:
    """Holds the open store, the secret box and the output stream of one command."""

    def __init__(self, cfg, out=sys.stdout):
        self.cfg = cfg
        self.store = Store(cfg.db)
        self.box = SecretBox.from_dir(cfg.dir)
        self.passwords = Passwords(cfg["argon2"])
        self.out = out

    def p(self, text=""):
        print(text, file=self.out)

    def run(self, obj: str, verb: str, args: list[str], opts) -> int:
        handler = self._handler(obj, verb)
        if handler is None:
            raise InvalidValue(f"unknown command '{obj} {verb}' (see --help)")
        with self.store.session() as c:
            if verb in ("show", "list"):
                return handler(c, args, opts) or 0
            # A change commits only once its output (often a secret shown once) is written:
            # all of it in one write, so what a reader saw (``| head``) was committed, and
            # output that could not be written (a closed pipe, a full disk) changes nothing.
            out, self.out = self.out, io.StringIO()
            try:
                with c.transaction():
                    code = handler(c, args, opts) or 0
                    try:
                        out.write(self.out.getvalue())
                        out.flush()
                    except OSError as exc:
                        raise OutputLost(f"the realm was not changed: the command's output could not "
                                         f"be written ({exc.strerror or exc})") from None
                return code
            finally:
                self.out = out

    def _handler(self, obj, verb):
        """The method ``OBJ_VERB``, or a verb of the tables below; None if there is none."""
        if obj not in OBJECTS:
            return None
        method = getattr(self, f"{obj}_{verb}", None)
        if method is not None:
            return method
        key = (obj, verb)
        if key in FLAGS:
            field, value, said = FLAGS[key]
            setter = {"user": self._user_flag, "token": self._token_flag, "host": self._host_set}[obj]
            return lambda c, args, opts: setter(c, args, verb, said, **{field: value})
        if key in MEMBERS:
            return lambda c, args, opts: self._member(c, obj, MEMBERS[key], args,
                                                      f"{obj} {verb} {MEMBER_ARGS[obj]} {_member_arg(verb)}")
        if key in USER_LISTS:
            field, noun = USER_LISTS[key]
            return lambda c, args, opts: self._user_list(c, args, verb, field, noun)
        if verb in ("show", "list"):
            return lambda c, args, opts: self._generic_show(c, obj, args if verb == "show" else [])
        return None

    # -- helpers ---------------------------------------------------------------

    @staticmethod
    def _args(args, n, usage, optional=0):
        if not n <= len(args) <= n + optional:
            raise InvalidValue(f"usage: {usage}")
        return args + [None] * (n + optional - len(args))

    def _show(self, kind, name, data, skip=()):
        self.p(f"{kind} {name}")
        for k in sorted(data):
            if k in skip:
                continue
            v = data[k]
            if k in ("auto_disable", "created") and v:
                v = f"{datetime.datetime.fromtimestamp(v, datetime.timezone.utc):%Y-%m-%d %H:%M:%S} UTC"
            elif isinstance(v, list):
                v = ", ".join(v) if v else "-"
            self.p(f"  {k}: {v}")

    def _generic_show(self, c, kind, args, skip=()):
        if args:
            self._show(kind, args[0], c.need(kind, args[0]), skip)
        else:
            for name, _ in c.list(kind):
                self.p(name)

    def _member(self, c, kind, verb, args, usage):
        name, value = self._args(args, 2, usage)
        field = {"token": "tokens", "role": "roles", "policy": "policies"}[verb.split("_", 1)[1]]
        (realm.member_add if verb.startswith("add") else realm.member_remove)(c, kind, name, field, value)
        self.p(f"{kind} {name}: {verb.replace('_', ' ')} {value}")

    def _read_secret(self, what):
        data = sys.stdin.readline().rstrip("\n")
        if not data:
            raise InvalidValue(f"{what}: nothing read from stdin")
        return data

    def _read_hmac_secret(self, name):
        """An existing YubiKey HMAC-SHA1 secret (40 hex digits) from stdin, read once."""
        text = self._read_secret(f"token '{name}'").strip().replace(" ", "")
        try:
            secret = bytes.fromhex(text)
        except ValueError:
            raise InvalidValue(f"token '{name}': the HMAC-SHA1 secret must be 40 hex digits") from None
        if len(secret) != 20:
            raise InvalidValue(f"token '{name}': the HMAC-SHA1 secret must be 40 hex digits")
        return secret

    # -- user ------------------------------------------------------------------

    def user_add(self, c, args, opts):
        (name,) = self._args(args, 1, "user add NAME")
        realm.user_add(c, name)
        self.p(f"user {name} added")
        if not opts.no_login_token:
            shown = realm.token_add(c, self.box, self.passwords, f"{name}/login", "totp",
                                    realm=self.cfg["realm"], pin=not opts.no_pin,
                                    pin_len=opts.pin_len)
            self._print_shown(f"{name}/login", "totp", shown)

    def user_del(self, c, args, opts):
        (name,) = self._args(args, 1, "user del NAME")
        realm.user_del(c, name)
        self.p(f"user {name} deleted")

    def user_show(self, c, args, opts):
        if not args:
            return self._generic_show(c, "user", args)
        name = args[0]
        u = c.need("user", name)
        self._show("user", name, u)
        dangling = [s for s in u.get("shares", []) if c.get("share", s) is None]
        if dangling:
            # Free-form names of releases before shares were objects: never mounted.
            self.p(f"  shares without a share object (not mounted; 'share add' them or "
                   f"'user remove_share'): {', '.join(dangling)}")
        if u.get("auto_disable") and time.time() >= u["auto_disable"]:
            self.p("  state: disabled (auto_disable reached)")
        toks = c.list("token", owner=name)
        self.p(f"  tokens: {', '.join(n for n, _ in toks) or '-'}")
        ags = {n: a for n, a in c.list("accessgroup")}
        for group, fails, last in realm.blocks(c, name):
            ag = ags.get(group, {})
            blocked = ag.get("max_fail") and fails >= ag["max_fail"] and not (
                ag.get("max_fail_reset") and time.time() - last >= ag["max_fail_reset"])
            self.p(f"  failed logins in {group}: {fails}{' (BLOCKED)' if blocked else ''}")


    def _user_flag(self, c, args, verb, said, **changes):
        (name,) = self._args(args, 1, f"user {verb} NAME")
        realm.user_set(c, name, **changes)
        self.p(f"user {name}: {said}")

    def user_add_share(self, c, args, opts):
        name, share = self._args(args, 2, "user add_share NAME SHARE")
        realm.share_grant(c, "user", name, share, True)
        self.p(f"user {name}: share {share} added")

    def user_remove_share(self, c, args, opts):
        name, share = self._args(args, 2, "user remove_share NAME SHARE")
        realm.share_grant(c, "user", name, share, False)
        self.p(f"user {name}: share {share} removed")

    def _user_list(self, c, args, verb, field, noun):
        name, value = self._args(args, 2, f"user {verb} NAME {noun.upper()}")
        (realm.user_list_add if verb.startswith("add") else realm.user_list_remove)(c, name, field, value)
        self.p(f"user {name}: {noun} {value} {'added' if verb.startswith('add') else 'removed'}")





    def user_auto_disable(self, c, args, opts):
        name, when = self._args(args, 2, "user auto_disable NAME +1m|+2h|+3D|+1W|0")
        at = realm.auto_disable_value(when)
        realm.user_set(c, name, auto_disable=at)
        self.p(f"user {name}: auto disable {'removed' if not at else 'at ' + _fmt(at)}")

    def user_unblock(self, c, args, opts):
        name, group = self._args(args, 1, "user unblock NAME [ACCESSGROUP]", 1)
        n = realm.user_unblock(c, name, group)
        self.p(f"user {name}: unblocked ({n} access group{'s' if n != 1 else ''} reset)")





    # -- token -----------------------------------------------------------------

    def _print_shown(self, name, ttype, shown):
        if "password" in shown:
            self.p(f"token {name}: generated password (shown once): {shown['password']}")
        if "uri" in shown:
            self.p(f"token {name}: {ttype.upper()} secret (shown once): {shown['secret']}")
            self.p(f"  {shown['uri']}")
            qr = _qr(shown["uri"])
            if qr:
                self.p(qr)
        elif "secret" in shown:
            self.p(f"token {name}: HMAC-SHA1 smartcard secret (shown once): {shown['secret']}")
        if "pin" in shown:
            self.p(f"token {name}: PIN (shown once): {shown['pin']} (type the PIN, then the code)")

    def token_add(self, c, args, opts):
        name, key = self._args(args, 1, "token add USER/TOKEN --type TYPE [SSH_PUBLIC_KEY]", 1)
        if not opts.type:
            raise InvalidValue(f"token '{name}': give --type password|totp|hotp|hmac|ssh")
        password = secret = None
        if opts.type == "password" and key == "-":
            password = self._read_secret(f"token '{name}'")
        elif opts.type == "hmac" and key == "-":
            secret = self._read_hmac_secret(name)
        elif key is not None and opts.type != "ssh":
            raise InvalidValue(f"token '{name}': no secret on the command line; use '-' to read it from stdin")
        if opts.replace and c.get("token", name):
            realm.token_del(c, name)
        # OTP tokens get a PIN unless --no-pin (seed 001: PIN+OTP at the prompt).
        pin = opts.type in ("totp", "hotp") and not opts.no_pin
        shown = realm.token_add(c, self.box, self.passwords, name, opts.type, password=password,
                                public_key=key, digits=opts.digits, period=opts.period,
                                algorithm=opts.algorithm, realm=self.cfg["realm"],
                                pin=pin, pin_len=opts.pin_len, secret=secret, slot=opts.slot)
        self.p(f"token {name} ({opts.type}) added")
        self._print_shown(name, opts.type, shown)

    def token_deploy(self, c, args, opts):
        """An hmac token whose secret goes straight into a connected YubiKey's slot
        (seed 001's ``deploy``): a fresh one (never shown), or an existing one from stdin."""
        name, key = self._args(args, 1, "token deploy USER/TOKEN [-] [--slot 1|2] [--touch]", 1)
        if key not in (None, "-"):
            raise InvalidValue(f"token '{name}': no secret on the command line; use '-' to read it from stdin")
        secret = self._read_hmac_secret(name) if key == "-" else os.urandom(20)
        if opts.replace and c.get("token", name):
            realm.token_del(c, name)
        realm.token_add(c, self.box, self.passwords, name, "hmac", secret=secret, slot=opts.slot,
                        realm=self.cfg["realm"])
        # The store's transaction commits only after the card took the secret.
        serial = program_yubikey(name, secret, opts.slot, opts.touch, opts.reader)
        tok = c.need("token", name)
        tok["serial"] = serial
        c.update("token", name, tok)
        self.p(f"token {name} (hmac) added and deployed to YubiKey {serial}, slot {opts.slot}"
               f"{' (touch required)' if opts.touch else ''}; the secret is in the card and the "
               "store only")

    def token_del(self, c, args, opts):
        (name,) = self._args(args, 1, "token del USER/TOKEN")
        realm.token_del(c, name)
        self.p(f"token {name} deleted")

    def token_show(self, c, args, opts):
        if not args:
            return self.token_list(c, args, opts)
        (name,) = self._args(args, 1, "token show USER/TOKEN")
        tok = c.need("token", name)
        # Hashes and secrets are never shown.
        self._show("token", name, tok, skip=("hash", "secret", "pin_hash"))
        row = c.one("SELECT last_counter FROM otp_state WHERE token = ?", (name,))
        if tok["type"] in ("totp", "hotp") and row:
            self.p(f"  last_used_{'step' if tok['type'] == 'totp' else 'counter'}: {row[0]}")

    def token_list(self, c, args, opts):
        user = args[0] if args else None
        for name, tok in c.list("token", owner=user):
            self.p(f"{name} {tok['type']}{'' if tok.get('enabled', True) else ' (disabled)'}")

    def token_password(self, c, args, opts):
        name, value = self._args(args, 1, "token password USER/TOKEN [-]", 1)
        if value not in (None, "-"):
            raise InvalidValue(f"token '{name}': no password on the command line (visible in ps); "
                               "give '-' and type it on stdin")
        password = self._read_secret(f"token '{name}'") if value == "-" else None
        generated = realm.token_password(c, self.passwords, name, password)
        self.p(f"token {name}: password set")
        if generated:
            self.p(f"token {name}: generated password (shown once): {generated}")

    def token_pin(self, c, args, opts):
        name, value = self._args(args, 1, "token pin USER/TOKEN [-]", 1)
        if value not in (None, "-"):
            raise InvalidValue(f"token '{name}': no PIN on the command line (visible in ps); "
                               "give '-' and type it on stdin")
        pin = self._read_secret(f"token '{name}'") if value == "-" else None
        generated = realm.token_pin(c, self.box, self.passwords, name, pin, opts.pin_len)
        self.p(f"token {name}: PIN set and enabled")
        if generated:
            self.p(f"token {name}: PIN (shown once): {generated}")

    def token_enable_pin(self, c, args, opts):
        (name,) = self._args(args, 1, "token enable_pin USER/TOKEN")
        realm.token_enable_pin(c, name, True)
        self.p(f"token {name}: PIN enabled (type PIN+code at the prompt)")

    def token_disable_pin(self, c, args, opts):
        (name,) = self._args(args, 1, "token disable_pin USER/TOKEN")
        realm.token_enable_pin(c, name, False)
        self.p(f"token {name}: PIN disabled (type the bare code at the prompt)")

    def _token_flag(self, c, args, verb, said, **changes):
        (name,) = self._args(args, 1, f"token {verb} USER/TOKEN")
        realm.token_set(c, name, **changes)
        self.p(f"token {name}: {said}")









    def token_auto_disable(self, c, args, opts):
        name, when = self._args(args, 2, "token auto_disable USER/TOKEN +1m|+2h|+3D|+1W|0")
        at = realm.auto_disable_value(when)
        realm.token_set(c, name, auto_disable=at)
        self.p(f"token {name}: auto disable {'removed' if not at else 'at ' + _fmt(at)}")

    def token_2f_token(self, c, args, opts):
        name, second = self._args(args, 2, "token 2f_token USER/TOKEN SECOND_TOKEN|none")
        realm.token_second_factor(c, name, None if second == "none" else second)
        self.p(f"token {name}: second factor {second}")

    def token_enable_2f(self, c, args, opts):
        (name,) = self._args(args, 1, "token enable_2f USER/TOKEN")
        realm.token_enable_2f(c, name, True)
        self.p(f"token {name}: second factor enabled (type password+code at the prompt, "
               "password+PIN+code when the second factor has a PIN)")

    def token_disable_2f(self, c, args, opts):
        (name,) = self._args(args, 1, "token disable_2f USER/TOKEN")
        realm.token_enable_2f(c, name, False)
        self.p(f"token {name}: second factor disabled")



    # -- host ------------------------------------------------------------------

    def host_add(self, c, args, opts):
        (name,) = self._args(args, 1, "host add NAME")
        jotp = realm.host_add(c, self.box, name)
        self.p(f"host {name} added")
        self.p(f"join one-time password (shown once): {jotp}")

    def host_new_jotp(self, c, args, opts):
        (name,) = self._args(args, 1, "host new_jotp NAME")
        jotp = realm.host_new_jotp(c, self.box, name)
        self.p(f"join one-time password for host {name} (shown once): {jotp}")

    def host_del(self, c, args, opts):
        (name,) = self._args(args, 1, "host del NAME")
        realm.host_del(c, name)
        self.p(f"host {name} removed; its certificate is no longer accepted")

    host_remove = host_del



    def _host_set(self, c, args, verb, said, **changes):
        (name,) = self._args(args, 1, f"host {verb} NAME")
        h = c.need("host", name)
        h.update(changes)
        c.update("host", name, h)
        self.p(f"host {name}: {said}")






    def host_accessgroup(self, c, args, opts):
        name, group = self._args(args, 2, "host accessgroup HOST GROUP")
        c.need("accessgroup", group)
        h = c.need("host", name)
        h["accessgroup"] = group
        c.update("host", name, h)
        self.p(f"host {name}: access group {group}")

    def host_password_policy(self, c, args, opts):
        name, pol = self._args(args, 2, "host password_policy HOST POLICY")
        if c.need("policy", pol).get("type") != "password_strength":
            raise InvalidValue(f"policy '{pol}' is not a password_strength policy")
        h = c.need("host", name)
        h["password_policy"] = pol
        c.update("host", name, h)
        self.p(f"host {name}: password policy {pol}")







    # -- role ------------------------------------------------------------------

    def role_add(self, c, args, opts):
        (name,) = self._args(args, 1, "role add NAME")
        realm.role_add(c, name)
        self.p(f"role {name} added")

    def role_del(self, c, args, opts):
        (name,) = self._args(args, 1, "role del NAME")
        realm.role_del(c, name)
        self.p(f"role {name} deleted")







    def role_add_share(self, c, args, opts):
        name, share = self._args(args, 2, "role add_share ROLE SHARE")
        realm.share_grant(c, "role", name, share, True)
        self.p(f"role {name}: share {share} added")

    def role_remove_share(self, c, args, opts):
        name, share = self._args(args, 2, "role remove_share ROLE SHARE")
        realm.share_grant(c, "role", name, share, False)
        self.p(f"role {name}: share {share} removed")

    # -- shares ------------------------------------------------------------------

    def share_add(self, c, args, opts):
        (name,) = self._args(args, 1, "share add NAME --type TYPE --source SRC [--options ...] "
                                      "[--mountpoint TEMPLATE] [--ro]")
        if not opts.type:
            raise InvalidValue(f"share '{name}': give --type {'|'.join(realm.SHARE_TYPES)}")
        realm.share_add(c, name, opts.type, opts.source, opts.options, opts.mountpoint, opts.ro)
        self.p(f"share {name} ({opts.type}) added; 'share add_node {name} HOST' lets a host mount it")

    def share_del(self, c, args, opts):
        (name,) = self._args(args, 1, "share del NAME")
        realm.share_del(c, name)
        self.p(f"share {name} deleted")

    def share_add_node(self, c, args, opts):
        name, host = self._args(args, 2, "share add_node SHARE HOST")
        realm.share_node(c, name, host, True)
        self.p(f"share {name}: node {host} added")

    def share_remove_node(self, c, args, opts):
        name, host = self._args(args, 2, "share remove_node SHARE HOST")
        realm.share_node(c, name, host, False)
        self.p(f"share {name}: node {host} removed")

    def _share_force(self, c, args, field):
        name, value = self._args(args, 2, f"share {field} SHARE VALUE|none")
        realm.share_force(c, name, field, value)
        self.p(f"share {name}: {field} {value}")

    def share_force_group(self, c, args, opts):
        return self._share_force(c, args, "force_group")

    def share_force_create_mode(self, c, args, opts):
        return self._share_force(c, args, "force_create_mode")

    def share_force_directory_mode(self, c, args, opts):
        return self._share_force(c, args, "force_directory_mode")

    # -- access groups -----------------------------------------------------------

    # -- RADIUS clients (seed 001 §5) ---------------------------------------

    def client_add(self, c, args, opts):
        (name,) = self._args(args, 1, "client add NAME --address CIDR")
        secret = realm.client_add(c, self.box, name, opts.address)
        self.p(f"client {name} ({c.need('client', name)['address']}) added")
        self.p(f"shared secret (shown once; put it in the client's RADIUS configuration): {secret}")

    def client_del(self, c, args, opts):
        (name,) = self._args(args, 1, "client del NAME")
        c.need("client", name)
        c.delete("client", name)
        self.p(f"client {name} deleted")

    def client_show(self, c, args, opts):
        self._generic_show(c, "client", args, skip=("secret",))

    def client_access_group(self, c, args, opts):
        name, group = self._args(args, 2, "client access_group CLIENT GROUP")
        c.need("accessgroup", group)
        data = c.need("client", name)
        data["accessgroup"] = group
        c.update("client", name, data)
        self.p(f"client {name}: access group {group}")

    client_accessgroup = client_access_group

    def accessgroup_add(self, c, args, opts):
        (name,) = self._args(args, 1, "accessgroup add NAME")
        realm.accessgroup_add(c, name)
        self.p(f"accessgroup {name} added")

    def accessgroup_del(self, c, args, opts):
        (name,) = self._args(args, 1, "accessgroup del NAME")
        if name == self.cfg["default_accessgroup"]:
            # Hosts without an access group of their own use it: deleting it would
            # leave their users' failure limit to chance.
            raise InvalidValue(f"accessgroup '{name}' is the default access group of hosts "
                               "without one (server.json: default_accessgroup); point "
                               "default_accessgroup at another access group first")
        for kind in ("host", "client"):
            for oname, o in c.list(kind):
                if o.get("accessgroup") == name:
                    raise InvalidValue(f"accessgroup '{name}' is used by {kind} '{oname}'")
        c.delete("accessgroup", name)
        c.execute("DELETE FROM fail_state WHERE accessgroup = ?", (name,))
        self.p(f"accessgroup {name} deleted")



    def accessgroup_max_fail(self, c, args, opts):
        name, n = self._args(args, 2, "accessgroup max_fail GROUP N (0 = no limit)")
        if not n.isdigit() or int(n) > 1000:
            raise InvalidValue(f"accessgroup '{name}': max_fail {n!r} is not a number 0..1000")
        g = c.need("accessgroup", name)
        g["max_fail"] = int(n)
        c.update("accessgroup", name, g)
        self.p(f"accessgroup {name}: max_fail {n}")

    def accessgroup_max_fail_reset(self, c, args, opts):
        name, when = self._args(args, 2, "accessgroup max_fail_reset GROUP 1m|2h|3D|1W|0")
        secs = 0 if when == "0" else realm.parse_duration(when)
        g = c.need("accessgroup", name)
        g["max_fail_reset"] = secs
        c.update("accessgroup", name, g)
        self.p(f"accessgroup {name}: max_fail_reset {when}")

    def accessgroup_unblock(self, c, args, opts):
        name, user = self._args(args, 2, "accessgroup unblock GROUP USER")
        realm.user_unblock(c, user, name)
        self.p(f"accessgroup {name}: user {user} unblocked")



    # -- policies ----------------------------------------------------------------

    def policy_add(self, c, args, opts):
        (name,) = self._args(args, 1, "policy add NAME --type logintimes --times SPEC")
        realm.policy_add(c, name, opts.type or "logintimes", opts.times, opts.min_length)
        self.p(f"policy {name} added")

    def policy_del(self, c, args, opts):
        (name,) = self._args(args, 1, "policy del NAME")
        realm.policy_del(c, name)
        self.p(f"policy {name} deleted")




def _fmt(t: float) -> str:
    return f"{datetime.datetime.fromtimestamp(t, datetime.timezone.utc):%Y-%m-%d %H:%M:%S} UTC"


def _qr(uri: str) -> str | None:
    """A terminal QR code when the optional ``qrcode`` package is installed."""
    try:
        import io

        import qrcode
    except ImportError:
        return None
    q = qrcode.QRCode(border=1)
    q.add_data(uri)
    buf = io.StringIO()
    q.print_ascii(out=buf)
    return buf.getvalue()


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage dump) and exit code 2."""

    def error(self, message):
        print(f"otpme-auth-admin: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="otpme-auth-admin", epilog=USAGE,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", required=True, help="the server directory")
    p.add_argument("-f", "--force", action="store_true", help="accepted for OTPme compatibility; never asks")
    p.add_argument("--type")
    p.add_argument("--times", help="login times of a logintimes policy")
    p.add_argument("--source", help="share add: what to mount (type-specific)")
    p.add_argument("--options", help="share add: mount options, comma separated (no secrets)")
    p.add_argument("--mountpoint", help="share add: mount point template (%%u user, %%s share; "
                   "relative to the host's automount_root)")
    p.add_argument("--ro", action="store_true", help="share add: mount read-only")
    p.add_argument("--address", help="client add: the RADIUS client's address or CIDR")
    p.add_argument("--min-length", type=int, default=8)
    p.add_argument("--digits", type=int, default=6)
    p.add_argument("--period", type=int, default=30)
    p.add_argument("--algorithm", default="SHA1")
    p.add_argument("--no-login-token", action="store_true", help="user add: no default TOTP token")
    p.add_argument("--no-pin", action="store_true",
                   help="token add / user add: an OTP token without a PIN (takes the bare code)")
    p.add_argument("--pin-len", type=int, default=4, help="digits of a generated PIN (4..12)")
    p.add_argument("--slot", type=int, default=2, choices=(1, 2),
                   help="token add --type hmac: the YubiKey slot the secret is in (default 2)")
    p.add_argument("-r", "--replace", action="store_true", help="token add: replace an existing token")
    p.add_argument("--touch", action="store_true", help="token deploy: the slot needs a touch")
    p.add_argument("--reader", default="yubico",
                   help="token deploy: PC/SC readers whose name contains this (default: yubico)")
    p.add_argument("object")
    p.add_argument("verb")
    p.add_argument("args", nargs="*")
    return p


def program_yubikey(name: str, secret: bytes, slot: int, touch: bool, reader: str):
    """Write ``secret`` as an HMAC-SHA1 (HMAC_LT64) configuration into ``slot`` of the one
    YubiKey connected (yubikit over PC/SC; yubikey-manager is an optional dependency:
    ``otpme-auth-server[smartcard]``); returns its serial."""
    try:
        from ykman.pcsc import list_devices
        from yubikit.core import ApplicationNotAvailableError
        from yubikit.core.smartcard import SmartCardConnection
        from yubikit.yubiotp import SLOT, HmacSha1SlotConfiguration, YubiOtpSession
    except ImportError:
        raise InvalidValue("token deploy needs yubikey-manager (pip install 'otpme-auth-server[smartcard]')") from None
    found = []
    try:
        for device in list_devices(reader):
            try:
                conn = device.open_connection(SmartCardConnection)
            except Exception:
                continue  # an empty reader
            try:
                found.append((conn, YubiOtpSession(conn)))
            except ApplicationNotAvailableError:
                conn.close()
    except Exception as exc:
        raise InvalidValue(f"token '{name}': no PC/SC service (is pcscd running?): {type(exc).__name__}") from None
    try:
        if len(found) != 1:
            raise InvalidValue(f"token '{name}': connect exactly one YubiKey (found {len(found)})")
        (conn, session), = found
        try:
            serial = session.get_serial()
        except Exception:
            serial = None
        config = HmacSha1SlotConfiguration(secret).require_touch(touch)
        try:
            session.put_configuration(SLOT(slot), config)
        except Exception as exc:
            raise InvalidValue(f"token '{name}': the YubiKey refused the configuration of slot "
                               f"{slot} ({type(exc).__name__}; is the slot protected by an access code?)") from None
        return serial
    finally:
        for conn, _ in found:
            conn.close()


def main(argv=None, out=sys.stdout) -> int:
    """Entry point of ``otpme-auth-admin``; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_intermixed_args(argv)
    except SystemExit as exc:
        return 2 if exc.code else 0
    try:
        cfg = config.load(os.path.abspath(args.dir))
        return Admin(cfg, out).run(args.object, args.verb, args.args, args)
    except ServerError as exc:
        print(f"otpme-auth-admin: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
