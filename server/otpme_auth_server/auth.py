"""The login engine: pre-auth, authenticate and join, with the realm's policies.

A TOTP/password login is three store round trips: one read (``_load``), one
conditional upsert that takes the attempt's slot in the user's failure budget
(``_begin``), and one short write transaction (``_commit``) whose conditional
UPDATE on ``otp_state`` decides which of several concurrent logins with one code
wins.  Password hashes are checked in a thread pool (argon2 releases the GIL)
between them, so no transaction is held open during the expensive part.

The lockout is exact (docs/protocol.md, "Failed logins"): a slot is taken
atomically *before* any credential is checked, so at most ``max_fail`` wrong
guesses are ever checked for a user in an access group, whatever the
concurrency, the number of server processes or the store.  Only a success (or a
refusal that proved the credentials) gives slots back.
"""

import asyncio
import base64
import datetime
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.serialization import Encoding
from otpme_auth import sshsig

from . import otp
from .crypto import cert_fingerprint, load_ca, sign_host_csr, cert_pem
from .errors import BadRequest
from .realm import share_for_host, times_allow

log = logging.getLogger("otpme_auth_server")

# Refusal reasons (docs/protocol.md) and the text a user may be shown.
REASONS = {
    "wrong_credentials": "Login failed: wrong credentials.",
    "user_disabled": "Login failed: the account is disabled.",
    "token_disabled": "Login failed: this token is disabled.",
    "auto_disabled": "Login failed: the account or token has expired.",
    "blocked": "Login failed: too many failed attempts; the account is blocked.",
    "outside_login_times": "Login failed: logins are not allowed at this time.",
    "host_not_allowed": "Login failed: you may not log in on this host.",
    # RADIUS (POST /v1/radius/auth): FreeRADIUS named a client the realm does not know.
    "client_unknown": "Login failed: this RADIUS client is not known to the realm.",
}

#: An attempt that finds every slot of the user's failure budget taken, the last one taken
#: less than SLOT_WAIT seconds before, waits up to SLOT_WAIT seconds for attempts still in
#: flight to give theirs back (a success does) before it is refused as ``blocked``
#: (docs/server.md, "Failed logins"); it looks every SLOT_POLL seconds (jittered).
SLOT_WAIT = 5.0
SLOT_POLL = 0.03
# The limits used when a host's access group does not exist (those of a new group).
MISSING_GROUP = {"max_fail": 5, "max_fail_reset": 0, "policies": []}
# What an unknown user's pre-auth looks like: a user with one plain password token.
DEFAULT_METHODS = [{"type": "password", "password_required": True, "otp_len": 0,
                    "second_factor": None, "pin_required": False, "prompt": "Password: "}]
# Verified for unknown users so their refusal costs as much as a known user's.
_DUMMY_HASH_PW = "otpme-auth dummy password"


def pin_len(tok: dict) -> int:
    """Digits of an OTP token's PIN typed before the code; 0 when it has none (or it is off)."""
    if tok.get("pin_enabled") and tok.get("pin_hash"):
        return int(tok.get("pin_len") or 0)
    return 0


class Refused(Exception):
    """Internal: a login is refused with ``reason`` (a key of REASONS)."""

    def __init__(self, reason: str, token: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.token = token


def verify_ssh_signature(public_key: str, blob_b64: str, data: bytes) -> bool:
    """Check an ssh-agent signature blob (``string algo, string sig``, base64) over ``data``.

    ssh-ed25519, ecdsa-sha2-nistp256/384/521 and rsa-sha2-256/512 are accepted, never
    ssh-rsa (SHA-1): ``otpme_auth.sshsig``, the check the hosts make too.
    """
    try:
        sshsig.verify_line(public_key, base64.b64decode(blob_b64, validate=True), data)
    except ValueError:  # SignatureRefused, or not base64
        return False
    return True


class Engine:
    """Answers protocol requests for one server process."""

    def __init__(self, cfg, store, box, passwords):
        self.cfg = cfg
        self.store = store
        self.box = box
        self.passwords = passwords
        self.tz = ZoneInfo(cfg["timezone"])
        self.gen = -1
        self.objs = {"host": {}, "role": {}, "accessgroup": {}, "policy": {}, "share": {},
                     "client": {}, "radiusserver": {}}
        self._secrets = {}  # (token name, sealed) -> decrypted secret, per process
        self._cpu = ThreadPoolExecutor(max(2, os.cpu_count() or 2), thread_name_prefix="argon2")
        self._dummy_hash = passwords.hash(_DUMMY_HASH_PW)
        self._ca = None
        self._logins = 0

    # -- store units of work (run on a store connection) ---------------------------

    def _load_objects(self, c):
        gen = c.generation()
        if gen == self.gen:
            return gen, None
        return gen, {k: dict(c.list(k)) for k in self.objs}

    # One statement for everything a login reads (one round trip on PostgreSQL):
    # the generation, the user, their tokens with OTP state.
    _LOAD_SQL = (
        "SELECT 'g', '', '', n FROM meta WHERE k = 'generation'"
        " UNION ALL SELECT o.kind, o.name, o.data, s.last_counter FROM objects o"
        " LEFT JOIN otp_state s ON s.token = o.name"
        " WHERE (o.kind = 'user' AND o.name = ?) OR (o.kind = 'token' AND o.owner = ?)")

    def _load(self, c, user: str):
        """Generation (+ changed objects), the user, their tokens with OTP state."""
        urow = None
        tokens = []
        gen = 0
        for kind, name, data, num in c.all(self._LOAD_SQL, (user, user)):
            if kind == "g":
                gen = num
            elif kind == "user":
                urow = (data,)
            else:
                tokens.append((name, data, num))
        objs = None if gen == self.gen else {k: dict(c.list(k)) for k in self.objs}
        return gen, objs, urow, tokens

    # Takes one slot of the user's failure budget in the access group, or none when
    # the budget is spent: one statement, so atomic on SQLite (the write lock) and on
    # PostgreSQL (ON CONFLICT DO UPDATE locks the row and re-checks WHERE on its
    # newest version).  ``started`` names the budget's epoch: a reset after
    # ``max_fail_reset`` starts a new one, which a success of the old one leaves alone.
    _TAKE_SLOT_SQL = (
        "INSERT INTO fail_state (username, accessgroup, fails, last_fail, started)"
        " VALUES (?, ?, 1, ?, ?)"
        " ON CONFLICT (username, accessgroup) DO UPDATE SET"
        " fails = CASE WHEN ? > 0 AND excluded.last_fail - fail_state.last_fail >= ?"
        "  THEN 1 ELSE fail_state.fails + 1 END,"
        " started = CASE WHEN ? > 0 AND excluded.last_fail - fail_state.last_fail >= ?"
        "  THEN excluded.started ELSE fail_state.started END,"
        " last_fail = excluded.last_fail"
        " WHERE ? = 0 OR fail_state.fails < ?"
        "  OR (? > 0 AND excluded.last_fail - fail_state.last_fail >= ?)"
        " RETURNING fails, started")

    def _begin(self, c, user, group, now, max_fail, reset, challenge_id):
        """Take the attempt's slot (None: the budget is spent) and the challenge, if any."""
        row = c.one(self._TAKE_SLOT_SQL, (user, group, now, now, reset, reset, reset, reset,
                                          max_fail, max_fail, reset, reset))
        challenge = self._take_challenge(c, challenge_id) if challenge_id is not None else None
        return (None if row is None else (int(row[0]), float(row[1]))), challenge

    @staticmethod
    def _budget(c, user, group):
        """(slots taken, when the last was taken) of the user's budget; (0, 0) if none."""
        row = c.one("SELECT fails, last_fail FROM fail_state WHERE username = ? AND accessgroup = ?",
                    (user, group))
        return (int(row[0]), float(row[1])) if row else (0, 0.0)

    async def _wait_for_slot(self, user, group, now, max_fail, reset):
        """A slot given back by an attempt in flight, or None (the budget is spent).

        Every slot taken: by failures, or by attempts still being checked (the user
        logging in on several hosts at once). Only if a slot was taken in the last
        SLOT_WAIT seconds can one come back soon; then wait for it, reading (cheap,
        concurrent) until the count drops, and take it as any attempt does.
        """
        fails, last = await self.store.run(self._budget, user, group)
        if now - last >= SLOT_WAIT:
            return None
        deadline = time.monotonic() + SLOT_WAIT
        while time.monotonic() < deadline:
            await asyncio.sleep(SLOT_POLL * (0.5 + secrets.randbelow(1000) / 1000))
            fails, _ = await self.store.run(self._budget, user, group)
            if max_fail and fails >= max_fail:
                continue
            slot, _ = await self.store.run(self._begin, user, group, now, max_fail, reset, None)
            if slot is not None:
                return slot
        return None

    @staticmethod
    def _give_back(c, user, group, slot, clear):
        """Return slots: on success ``clear`` (the slot and every one counted before it),
        else only this one. Slots counted after it (concurrent attempts) stay."""
        n = slot[0] if clear else 1
        c.execute("UPDATE fail_state SET fails = CASE WHEN fails > ? THEN fails - ? ELSE 0 END"
                  " WHERE username = ? AND accessgroup = ? AND started = ?",
                  (n, n, user, group, slot[1]))

    @staticmethod
    def _take_challenge(c, challenge_id: str):
        row = c.one("SELECT username, token, host, kind, value, expires FROM challenges WHERE id = ?",
                    (challenge_id,))
        # Single use: whoever deletes the row owns the challenge, even if it is then refused.
        if row and c.execute("DELETE FROM challenges WHERE id = ?", (challenge_id,)).rowcount == 1:
            return row
        return None

    def _refresh(self, gen, objs):
        if objs is not None:
            self.objs = objs
            self.gen = gen
            self._secrets.clear()

    @classmethod
    def _commit(cls, c, consume, user, group, slot, session, purge):
        with c.transaction():
            if purge:
                c.execute("DELETE FROM sessions WHERE expires < ?", (session[4],))
            for token, counter in consume:
                cur = c.execute("UPDATE otp_state SET last_counter = ? WHERE token = ? AND last_counter < ?",
                                (counter, token, counter))
                if cur.rowcount != 1:
                    raise Refused("wrong_credentials")  # replay: another login used it first
            cls._give_back(c, user, group, slot, True)
            c.execute("INSERT INTO sessions (id, username, token, host, created, expires) VALUES (?, ?, ?, ?, ?, ?)",
                      session)

    @staticmethod
    def _insert_challenges(c, rows, now):
        with c.transaction():
            c.execute("DELETE FROM challenges WHERE expires < ?", (now,))
            for r in rows:
                c.execute("INSERT INTO challenges (id, username, token, host, kind, value, expires)"
                          " VALUES (?, ?, ?, ?, ?, ?, ?)", r)

    # -- host authentication -------------------------------------------------------

    def check_host(self, peer) -> tuple[str, dict]:
        """Return (name, host object) of the peer certificate, or raise BadRequest."""
        if peer is None:
            raise BadRequest("client_certificate_required",
                             "this request needs the host's client certificate; join the host first", 401)
        name, der = peer
        host = self.objs["host"].get(name)
        if host is None or host.get("cert") != cert_fingerprint(der):
            raise BadRequest("host_unknown", f"host '{name}' is not a member of realm "
                             f"'{self.cfg['realm']}' (removed, or joined again since)", 403)
        if not host.get("enabled", True):
            raise BadRequest("host_disabled", f"host '{name}' is disabled", 403)
        return name, host

    async def _host(self, peer):
        gen, objs = await self.store.run(self._load_objects)
        self._refresh(gen, objs)
        return self.check_host(peer)

    def _group(self, host) -> str:
        return host.get("accessgroup") or self.cfg["default_accessgroup"]

    def _host_tokens(self, host) -> set[str] | None:
        """Tokens allowed on ``host`` (directly or via roles, nested); None = unlimited."""
        if host.get("unlimited"):
            return None
        allowed = set(host.get("tokens", []))
        seen, todo = set(), list(host.get("roles", []))
        while todo:
            r = todo.pop()
            if r in seen:
                continue
            seen.add(r)
            role = self.objs["role"].get(r)
            if role:
                allowed.update(role.get("tokens", []))
                todo.extend(role.get("roles", []))
        return allowed

    def _shares(self, u: dict, token: str, host_name: str) -> list[dict]:
        """The share definitions this login may mount on ``host``: the user's own shares
        and those of every role holding the login token (directly or nested), each only
        when the host is one of the share's nodes.  A name without a share object (a
        free-form name of older releases) is skipped."""
        names = list(u.get("shares", []))
        roles = self.objs["role"]
        direct = {r for r, obj in roles.items() if token in obj.get("tokens", [])}
        for r, obj in roles.items():
            seen, todo = set(), [r]
            while todo:
                x = todo.pop()
                if x in seen:
                    continue
                seen.add(x)
                if x in direct:
                    names.extend(obj.get("shares", []))
                    break
                todo.extend(roles.get(x, {}).get("roles", []))
        out, seen_names = [], set()
        for n in names:
            share = self.objs["share"].get(n)
            if n in seen_names or share is None or host_name not in share.get("nodes", []):
                continue
            seen_names.add(n)
            out.append(share_for_host(n, share))
        return out

    def _secret(self, name: str, tok: dict) -> bytes:
        key = (name, tok["secret"])
        s = self._secrets.get(key)
        if s is None:
            if len(self._secrets) > 200000:
                self._secrets.clear()
            s = self._secrets[key] = self.box.open(tok["secret"], name)
        return s

    # -- pre-auth --------------------------------------------------------------------

    async def preauth(self, peer, req) -> dict:
        """What the user's login on this host needs (docs/protocol.md, POST /v1/preauth)."""
        now = time.time()
        user = req["user"]
        gen, objs, urow, tokens = await self.store.run(self._load, user)
        self._refresh(gen, objs)
        host_name, host = self.check_host(peer)
        methods, seen, challenges = [], set(), []
        by_name = {n: json.loads(d) for n, d, _ in tokens}
        reported = None
        if req.get("offline_used") is not None:
            reported = await self._offline_reports(host_name, host, user, tokens,
                                                   req["offline_used"], now)
        cands = self._candidates(host, by_name)
        for name, tok in sorted(by_name.items()):
            if name not in cands:
                continue
            t = tok["type"]
            if t == "password":
                second = by_name.get(tok.get("2f_token") or "") if tok.get("2f_enabled") else None
                pin = bool(second and pin_len(second))
                m = {"type": "password", "password_required": True,
                     "otp_len": second["digits"] if second else 0,
                     "second_factor": second["type"] if second else None,
                     "pin_required": pin,
                     "prompt": ("Password+PIN+OTP: " if pin else "Password+OTP: ") if second
                     else "Password: "}
            elif t in ("totp", "hotp"):
                pin = bool(pin_len(tok))
                m = {"type": t, "password_required": False, "otp_len": tok["digits"],
                     "second_factor": None, "pin_required": pin,
                     "prompt": "PIN+OTP: " if pin else "OTP: "}
            else:
                cid = secrets.token_urlsafe(24)
                value = secrets.token_hex(32)
                expires = now + self.cfg["challenge_ttl"]
                challenges.append((cid, user, name, host_name, t, value, expires))
                m = {"type": t, "password_required": False, "otp_len": 0, "second_factor": None,
                     "pin_required": False, "challenge_id": cid, "challenge": value, "expires": expires}
                if t == "ssh":
                    m["public_key"] = tok["public_key"]
                else:  # the YubiKey slot programmed with the secret (tokens made before: 2)
                    m["slot"] = tok.get("slot", 2)
                methods.append(m)
                continue
            key = tuple(sorted(m.items(), key=lambda kv: kv[0]))
            if key not in seen:
                seen.add(key)
                methods.append(m)
        if challenges:
            await self.store.run(self._insert_challenges, challenges, now)
        if not methods:
            methods = [dict(m) for m in DEFAULT_METHODS]
        answer = {"status": "ok", "user": user, "realm": self.cfg["realm"], "methods": methods}
        if reported is not None:
            answer["offline_used"] = reported
        return answer

    async def account(self, peer, req, now: float | None = None) -> dict:
        """May the user's session on this host be opened now? (POST /v1/account)

        The account phase of a login (pam_acct_mgmt), whichever module
        authenticated it: the user enabled and not auto-disabled, a token of the
        user usable on this host (host restriction, enabled, not auto-disabled),
        and a login-time policy of the user, that token, the host and its access
        group allowing now.  Nothing is written; no credential is involved.
        """
        now = time.time() if now is None else now
        user = req["user"]
        gen, objs, urow, tokens = await self.store.run(self._load, user)
        self._refresh(gen, objs)
        host_name, host = self.check_host(peer)
        if urow is None:
            return {"status": "unknown", "user": user}
        u = json.loads(urow[0])
        toks = {n: json.loads(d) for n, d, _ in tokens}
        ag = self.objs["accessgroup"].get(self._group(host)) or MISSING_GROUP
        reason = None
        if not u.get("enabled", True):
            reason = "user_disabled"
        elif u.get("auto_disable") and now >= u["auto_disable"]:
            reason = "auto_disabled"
        else:
            usable = [n for n in sorted(self._candidates(host, toks))
                      if self._state_refusal(now, n, toks[n]) is None]
            if not usable:
                reason = "host_not_allowed"
            elif not any(self._times_ok(now, u, toks[n], host, ag) for n in usable):
                reason = "outside_login_times"
        if reason:
            log.warning("account refused user=%s host=%s reason=%s", user, host_name, reason)
            return {"status": "refused", "reason": reason, "message": REASONS[reason]}
        return {"status": "ok", "user": user}

    @staticmethod
    def _burn_counters(c, used):
        with c.transaction():
            for token, counter in used:
                # Only forward: a report older than what the server knows changes nothing.
                c.execute("INSERT INTO otp_state (token, last_counter) VALUES (?, ?)"
                          " ON CONFLICT (token) DO UPDATE SET last_counter = excluded.last_counter"
                          " WHERE otp_state.last_counter < excluded.last_counter", (token, counter))

    def _offline_tokens(self, host, toks) -> set[str]:
        """The OTP tokens whose offline data ``host`` could have been given: an
        offline-enabled TOTP/HOTP token usable there, or the enabled second factor of an
        offline-enabled password token usable there (issue 8 point 13: a host reports
        only codes it could have accepted offline, so it burns no other user's codes)."""
        out = set()
        for name in self._candidates(host, toks):
            tok = toks[name]
            if not tok.get("offline"):
                continue
            if tok["type"] in ("totp", "hotp"):
                out.add(name)
            elif tok["type"] == "password" and tok.get("2f_enabled") and tok.get("2f_token"):
                out.add(tok["2f_token"])
        return out

    async def _offline_reports(self, host_name, host, user, tokens, items, now) -> int:
        """Take a host's report of codes used offline: its own user's, and those of other
        users of the host (a host reports at its next contact with the server, whoever
        logs in: docs/protocol.md, "Codes used offline").  Returns how many were taken."""
        by_owner = {}
        for token, counter in items:
            by_owner.setdefault(token.split("/", 1)[0], []).append((token, counter))
        taken = 0
        for owner, owned in sorted(by_owner.items()):
            if owner != user:
                _, _, urow, owner_tokens = await self.store.run(self._load, owner)
                if urow is None:
                    log.warning("offline codes report ignored host=%s user=%s: no such user",
                                host_name, owner)
                    continue
            else:
                owner_tokens = tokens
            toks = {n: json.loads(d) for n, d, _ in owner_tokens}
            counters = {n: (-1 if lc is None else lc) for n, _, lc in owner_tokens}
            taken += await self._offline_used(host_name, owner, toks, counters, owned, now,
                                              self._offline_tokens(host, toks))
        return taken

    async def _offline_used(self, host_name, user, toks, counters, items, now,
                            allowed) -> int:
        """Record the one-time codes a host accepted offline, so they are refused online.

        Idempotent (the counter only moves forward); a counter beyond what could have
        been valid (TOTP: a future step past the window; HOTP: more than
        ``offline_hotp_burn_max`` past the server's) is ignored and logged, so a host
        cannot burn a user's future codes; so is a token not in ``allowed`` (whose
        offline data the host could not have held).  Returns how many items were taken.
        """
        used = []
        for token, counter in items:
            tok = toks.get(token)
            if tok is None or tok["type"] not in ("totp", "hotp"):
                log.warning("offline codes report ignored host=%s user=%s token=%s: not an OTP "
                            "token of the user", host_name, user, token)
                continue
            if token not in allowed:
                log.warning("offline codes report ignored host=%s user=%s token=%s: not a token "
                            "this host could hold offline (not usable here, or offline off)",
                            host_name, user, token)
                continue
            if tok["type"] == "totp":
                limit = otp.totp_step(now, tok["period"]) + self.cfg["totp_window"]
            else:
                limit = max(0, counters.get(token, -1)) + self.cfg["offline_hotp_burn_max"]
            if counter > limit:
                log.warning("offline codes report ignored host=%s user=%s token=%s: counter "
                            "beyond what could have been used", host_name, user, token)
                continue
            used.append((token, counter))
        if used:
            await self.store.run(self._burn_counters, used)
            log.info("offline codes reported host=%s user=%s tokens=%s", host_name, user,
                     ",".join(sorted({t for t, _ in used})))
        return len(used)

    # -- authenticate ------------------------------------------------------------------

    async def authenticate(self, peer, req, now: float | None = None) -> dict:
        """Verify a login (POST /v1/auth); returns the success or refusal body."""
        now = time.time() if now is None else now
        user = req["user"]
        gen, objs, urow, tokens = await self.store.run(self._load, user)
        self._refresh(gen, objs)
        host_name, host = self.check_host(peer)  # before anything is written
        return await self._login(host_name, host, user, urow, tokens, req, now)

    # -- RADIUS (docs/radius.md) ---------------------------------------------------------

    def check_radius(self, peer) -> str:
        """The name of the realm's FreeRADIUS instance whose certificate ``peer`` shows
        (made by ``otpme-auth-server radius-config``), or raise BadRequest.

        Its certificate's CN is ``radius:NAME``, a name no host can have, and its
        fingerprint must be the one recorded: a host's certificate is never one.
        """
        if peer is None:
            raise BadRequest("radius_credential_required", "this endpoint needs the realm's "
                             "FreeRADIUS certificate (otpme-auth-server radius-config)", 403)
        cn, der = peer
        name = cn[len("radius:"):] if cn.startswith("radius:") else None
        obj = self.objs["radiusserver"].get(name) if name else None
        if obj is None or not hmac.compare_digest(obj.get("cert") or "", cert_fingerprint(der)):
            raise BadRequest("radius_credential_required", "the client certificate is not the "
                             "realm's FreeRADIUS certificate (made again since?)", 403)
        return name

    async def radius_authenticate(self, peer, req, now: float | None = None) -> dict:
        """An Access-Request FreeRADIUS forwards (POST /v1/radius/auth).

        The login of a PAM host, verbatim (``_login``): the RADIUS client plays the
        host, with its access group (failure limits, login-time policies); every token
        of the user a typed password can prove (password, password+OTP, TOTP/HOTP) may
        be used; one-time codes are consumed in the same table as PAM logins'.
        """
        now = time.time() if now is None else now
        user = req["user"]
        gen, objs, urow, tokens = await self.store.run(self._load, user)
        self._refresh(gen, objs)
        radius = self.check_radius(peer)
        client = self.objs["client"].get(req["client"])
        if client is None:
            log.warning("radius login refused user=%s client=%s server=%s reason=client_unknown",
                        user, req["client"], radius)
            return {"status": "refused", "reason": "client_unknown", "message": REASONS["client_unknown"]}
        host = {"accessgroup": client.get("accessgroup"), "unlimited": True, "policies": []}
        return await self._login("radius:" + req["client"], host, user, urow, tokens,
                                 {"user": user, "password": req["password"], "challenge_id": None}, now)

    async def _login(self, host_name, host, user, urow, tokens, req, now) -> dict:
        """The one login path of PAM hosts and RADIUS clients."""
        group = self._group(host)
        ag = self.objs["accessgroup"].get(group)
        if ag is None:  # fail closed: a missing group gets a new group's limits, not none
            log.warning("host %s: access group %s does not exist; using max_fail %d",
                        host_name, group, MISSING_GROUP["max_fail"])
            ag = MISSING_GROUP
        try:
            if urow is None:
                if req.get("challenge_id") is not None:
                    await self.store.run(self._take_challenge, req["challenge_id"])
                elif req.get("password") is not None:
                    # Same cost as a known user's password check: no user enumeration by timing.
                    await asyncio.get_running_loop().run_in_executor(
                        self._cpu, self.passwords.verify, self._dummy_hash, req["password"])
                raise Refused("wrong_credentials")
            max_fail, reset = int(ag.get("max_fail", 0)), ag.get("max_fail_reset", 0)
            slot, challenge = await self.store.run(
                self._begin, user, group, now, max_fail, reset, req.get("challenge_id"))
            if slot is None:
                slot = await self._wait_for_slot(user, group, now, max_fail, reset)
            if slot is None:
                raise Refused("blocked")
            result = await self._verify(host_name, host, group, ag, user, urow, tokens, slot,
                                        challenge, req, now)
        except Refused as exc:
            log.warning("login refused user=%s host=%s token=%s reason=%s",
                        user, host_name, exc.token or "-", exc.reason)
            return {"status": "refused", "reason": exc.reason, "message": REASONS[exc.reason]}
        log.info("login ok user=%s host=%s token=%s", user, host_name, result["token"])
        return result

    def _candidates(self, host, toks) -> set[str]:
        """Tokens that may log in as themselves on ``host``.

        Decided before any credential is checked, so a host learns nothing about a
        token it may not use: its credentials are wrong credentials here (and count).
        A token that is another token's enabled second factor logs in only as part of
        that token, unless an admin made it ``standalone``.
        """
        allowed = self._host_tokens(host)
        seconds = {t.get("2f_token") for t in toks.values()
                   if t["type"] == "password" and t.get("2f_enabled")}
        return {n for n, t in toks.items()
                if (allowed is None or n in allowed) and (n not in seconds or t.get("standalone"))}

    def _state_refusal(self, now, name, tok) -> str | None:
        """Why the token ``name`` may not be used now (as itself or as a second factor)."""
        if not tok.get("enabled", True):
            return "token_disabled"
        if tok.get("auto_disable") and now >= tok["auto_disable"]:
            return "auto_disabled"
        return None

    async def _verify(self, host_name, host, group, ag, user, urow, tokens, slot, challenge, req, now):
        toks = {n: json.loads(d) for n, d, _ in tokens}
        counters = {n: (-1 if lc is None else lc) for n, _, lc in tokens}
        matched, consume = await self._match(user, toks, self._candidates(host, toks), counters,
                                             challenge, host_name, req, now)
        if matched is None:
            raise Refused("wrong_credentials")  # the slot stays taken: a failed login
        try:
            tok = toks[matched]
            u = json.loads(urow[0])
            if not u.get("enabled", True):
                raise Refused("user_disabled", matched)
            if u.get("auto_disable") and now >= u["auto_disable"]:
                raise Refused("auto_disabled", matched)
            # Every check on a token holds for the second factor it used, too.
            used = [matched] + [n for n, _ in consume if n != matched]
            for name in used:
                reason = self._state_refusal(now, name, toks[name])
                if reason:
                    raise Refused(reason, matched)
            if not self._times_ok(now, u, *(toks[n] for n in used), host, ag):
                raise Refused("outside_login_times", matched)
        except Refused:
            # The credentials were proved: not a failed login, the slot goes back.
            await self.store.run(self._give_back, user, group, slot, False)
            raise
        sid = secrets.token_urlsafe(32)
        expires = now + self.cfg["session_ttl"]
        self._logins += 1
        try:
            await self.store.run(self._commit, consume, user, group, slot,
                                 (sid, user, matched, host_name, now, expires),
                                 self._logins % 1000 == 1)  # expired sessions go now and then
        except Refused:
            raise Refused("wrong_credentials", matched) from None  # replay: the slot stays taken
        return self._success(user, u, matched, tok, toks, counters, consume, host_name, host, sid, expires, now)

    def _times_ok(self, now, *objs) -> bool:
        local = datetime.datetime.fromtimestamp(now, self.tz)
        minute = local.hour * 60 + local.minute
        for obj in objs:
            for pname in obj.get("policies", []):
                pol = self.objs["policy"].get(pname)
                if pol and pol.get("type") == "logintimes" and not times_allow(pol["times"], local.weekday(), minute):
                    return False
        return True

    def _otp_match(self, name, tok, counters, code, now):
        """Counter/step of ``code`` for an OTP token, newer than the last used one, or None."""
        secret = self._secret(name, tok)
        last = counters.get(name, -1)
        if tok["type"] == "totp":
            step = otp.totp_step(now, tok["period"])
            w = self.cfg["totp_window"]
            first, end = max(step - w, last + 1), step + w
        else:
            first, end = last + 1, last + 1 + self.cfg["hotp_lookahead"]
        if first > end:
            return None
        return otp.match_counter(secret, code, first, end, tok["digits"], tok.get("algorithm", "SHA1"))

    async def _match(self, user, toks, cands, counters, challenge, host_name, req, now):
        """Find the token of ``cands`` the credentials prove; returns (name, [(otp token, counter)]).

        ``toks`` holds all the user's tokens (a second factor need not be a candidate).
        """
        if req.get("challenge_id") is not None:
            if challenge is None:
                return None, []
            c_user, c_tok, c_host, kind, value, expires = challenge
            tok = toks.get(c_tok)
            if (c_user != user or c_host != host_name or expires < now or tok is None
                    or tok["type"] != kind or c_tok not in cands):
                return None, []
            resp = req["response"]
            if kind == "hmac":
                want = hmac.new(self._secret(c_tok, tok), bytes.fromhex(value), hashlib.sha1).hexdigest()
                # bytes: compare_digest refuses non-ASCII str with a TypeError
                ok = hmac.compare_digest(want.encode(), resp.lower().strip().encode("utf-8", "replace"))
            else:
                ok = verify_ssh_signature(tok["public_key"], resp, bytes.fromhex(value))
            return (c_tok, []) if ok else (None, [])
        typed = req["password"]
        loop = asyncio.get_running_loop()
        # OTP tokens first: no argon2 cost for a code or a PIN+code.
        for name, tok in sorted(toks.items()):
            if name not in cands or tok["type"] not in ("totp", "hotp") or not (typed.isascii() and typed.isdigit()):
                continue
            pl = pin_len(tok)
            if len(typed) != pl + tok["digits"]:
                continue
            c = self._otp_match(name, tok, counters, typed[pl:], now)
            # The PIN is checked whether the code matched or not (the answer's timing
            # says nothing about the code), and a wrong PIN leaves the code unconsumed.
            if pl and not self._pin_ok(name, tok, typed[:pl]):
                continue
            if c is not None:
                return name, [(name, c)]
        for name, tok in sorted(toks.items()):
            if name not in cands or tok["type"] != "password":
                continue
            pw, code, second, pin = typed, None, None, None
            if tok.get("2f_enabled"):
                second = tok.get("2f_token")
                if second not in toks:
                    continue  # never degrade to the password alone
                d = toks[second]["digits"]
                pl = pin_len(toks[second])
                if len(typed) <= d + pl:
                    continue
                pw, code = typed[:-d], typed[-d:]
                if pl:  # password+PIN+code
                    pw, pin = pw[:-pl], pw[-pl:]
            if not await loop.run_in_executor(self._cpu, self._password_ok, name, tok, pw,
                                              second, toks.get(second), pin):
                continue
            if second is None:
                return name, []
            c = self._otp_match(second, toks[second], counters, code, now)
            if c is not None:
                return name, [(second, c)]
        return None, []

    def _pin_ok(self, name: str, tok: dict, pin: str) -> bool:
        # A keyed hash, compared in constant time: what protects a 4-digit PIN at rest is
        # the key in store.key, not a slow hash (docs/server.md), so a PIN+code login
        # stays as fast as a code alone.
        return hmac.compare_digest(tok["pin_hash"], self.box.pin_input(name, pin))

    def _password_ok(self, name, tok, pw, second, stok, pin) -> bool:
        """Password (and the second factor's PIN): both are always checked, so the
        time taken does not tell which of the two was wrong."""
        ok = self.passwords.verify(tok["hash"], pw)
        if pin is not None:
            ok = self._pin_ok(second, stok, pin) and ok
        return ok

    def _offline(self, name, tok, toks, counters, consume, now) -> dict:
        used = dict(consume)
        d = {"token": name, "type": tok["type"], "session_keep": bool(tok.get("session_keep")),
             "expiry": now + self.cfg["offline_expiry"],
             "unused_expiry": self.cfg["offline_unused_expiry"]}

        def otp_params(n, t):
            p = {"token": n, "type": t["type"], "secret": base64.b32encode(self._secret(n, t)).decode(),
                 "digits": t["digits"], "algorithm": t.get("algorithm", "SHA1"),
                 "last_counter": used.get(n, counters.get(n, -1)),
                 # Not the PIN: it is typed before the code and keys the client's cache.
                 "pin_required": bool(pin_len(t))}
            if t["type"] == "totp":
                p["period"] = t["period"]
            return p

        t = tok["type"]
        if t == "password":
            d["verify"] = "password"
            second = tok.get("2f_token") if tok.get("2f_enabled") else None
            d["second_factor"] = otp_params(second, toks[second]) if second in toks else None
        elif t in ("totp", "hotp"):
            d.update({k: v for k, v in otp_params(name, tok).items() if k not in ("token", "type")})
        elif t == "hmac":
            d["challenge"] = secrets.token_hex(32)
            d["slot"] = tok.get("slot", 2)   # the card answers in this slot (offline cache)
        elif t == "ssh":
            d["public_key"] = tok["public_key"]
        if t in ("password", "totp", "hotp"):
            d["key_revision"] = self._key_revision(name, tok, toks)
        return d

    def _key_revision(self, name, tok, toks) -> str:
        """Changes when what keys the client's offline cache changes (docs/protocol.md)."""
        parts = [name, tok["type"], tok.get("hash"), tok.get("pin_hash")]
        otps = [(name, tok)] if tok["type"] in ("totp", "hotp") else []
        second = tok.get("2f_token") if tok.get("2f_enabled") else None
        if tok["type"] == "password" and second in toks:
            otps.append((second, toks[second]))
        for n, t in otps:
            parts.append([n, t.get("pin_hash"), base64.b32encode(self._secret(n, t)).decode(),
                          t.get("digits"), t.get("algorithm", "SHA1"), t.get("period")])
        return self.box.offline_revision(parts)

    def _success(self, user, u, name, tok, toks, counters, consume, host_name, host, sid, expires, now) -> dict:
        pol = self.objs["policy"].get(host.get("password_policy") or "")
        allowed = self._host_tokens(host)
        return {
            "status": "ok",
            "user": user,
            "token": name,
            "token_type": tok["type"],
            "session": {"id": sid, "expires": expires, "keep": bool(tok.get("session_keep"))},
            "offline": [self._offline(name, tok, toks, counters, consume, now)] if tok.get("offline") else [],
            "shares": self._shares(u, name, host_name),
            # For start_ssh_agent=auto: the user's ssh keys usable on this host.
            "ssh_keys": sorted(t["public_key"] for n, t in toks.items() if t["type"] == "ssh"
                               and t.get("enabled", True) and (allowed is None or n in allowed)),
            "auto_mount": bool(u.get("auto_mount")),
            "greeting": self.cfg["greeting"].replace("{user}", user).replace("{realm}", self.cfg["realm"]),
            "password_policy": dict(pol, name=host.get("password_policy")) if pol else None,
        }

    # -- join ----------------------------------------------------------------------------

    @staticmethod
    def _consume_join(c, host, digest, fingerprint):
        with c.transaction():
            if c.execute("DELETE FROM joins WHERE host = ? AND digest = ?", (host, digest)).rowcount != 1:
                return False
            obj = c.get("host", host)
            if obj is None:
                return False
            obj["cert"] = fingerprint
            c.update("host", host, obj)
            return True

    @staticmethod
    def _join_pending(c, host, digest):
        return c.execute("SELECT 1 FROM joins WHERE host = ? AND digest = ?",
                         (host, digest)).fetchone() is not None

    def _join_refused(self, host):
        log.warning("join refused host=%s", host)
        return BadRequest("join_refused", f"host '{host}' may not join: unknown host, "
                          "or the join password is wrong or used already", 403)

    async def join(self, req) -> dict:
        """Exchange host name + JOTP + CSR for a client certificate (POST /v1/join).

        The JOTP is checked first: a wrong one is refused before the CSR is even
        parsed.  The CSR work (parse, key limits, signature, signing) runs in the CPU
        pool, never on the event loop; the JOTP is consumed atomically afterwards.
        """
        digest = self.box.join_digest(req["host"], req["jotp"])
        if not await self.store.run(self._join_pending, req["host"], digest):
            raise self._join_refused(req["host"])
        if self._ca is None:
            self._ca = load_ca(self.cfg.dir)
        ca_key, ca_cert = self._ca
        cert = await asyncio.get_running_loop().run_in_executor(
            self._cpu, sign_host_csr, ca_key, ca_cert, req["csr"], req["host"], self.cfg["host_cert_days"])
        fp = cert_fingerprint(cert.public_bytes(Encoding.DER))
        if not await self.store.run(self._consume_join, req["host"], digest, fp):
            raise self._join_refused(req["host"])
        log.info("host joined host=%s", req["host"])
        return {"status": "ok", "host": req["host"], "realm": self.cfg["realm"], "site": self.cfg["site"],
                "certificate": cert_pem(cert).decode(), "ca_certificate": cert_pem(ca_cert).decode()}
