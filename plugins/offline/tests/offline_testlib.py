"""Shared helpers and fixtures of the offline plugin's tests.

Not a conftest.py: the repository's tests import helpers with ``from conftest
import ...``, and a second module named ``conftest`` would shadow theirs.
Test modules import the fixtures they use from here.
"""

import pytest

from otpme_auth_offline.cache import OfflineCache, Throttle
from otpme_auth_offline.keyfunc import KdfParams

# 8 KiB, one pass: microseconds, so hundreds of unlocks stay fast.  The real
# parameters are exercised once, in test_offline_cache.py::test_seed_default_parameters.
TINY = KdfParams("Argon2_i", 1, 8, 1)
TINY2 = KdfParams("Argon2_i", 2, 16, 2)
NOW = 1_800_000_000
DAY = 86400


class Clock:
    def __init__(self, now=NOW):
        self.now = now

    def __call__(self):
        return self.now


def store(cache, user="alice", token="alice/pass", secret="correct horse", payload=b'{"n": 0}',
          unused=7 * DAY, absolute=NOW + 30 * DAY, params=TINY, **kw):
    return cache.store(user, token, secret, payload, unused, absolute, params, **kw)


@pytest.fixture
def derivations(monkeypatch):
    """The key derivations the cache has run so far (a list: its length is the count)."""
    import otpme_auth_offline.cache as cache_mod
    calls = []
    real = cache_mod.derive_key

    def counting(secret, salt, params):
        calls.append(params)
        return real(secret, salt, params)
    monkeypatch.setattr(cache_mod, "derive_key", counting)
    return calls


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def root(tmp_path):
    return str(tmp_path / "offline")


@pytest.fixture
def cache(root, clock):
    # No throttling here unless a test asks for it (tests fail on purpose a lot).
    return OfflineCache(root, clock=clock, throttle=Throttle(free=10 ** 9))


# --------------------------------------------------------------------------
# Host-side helpers: the hooks with a stand-in online plugin, and a real realm
# --------------------------------------------------------------------------

PW = "correct horse battery"
#: Cheap Argon2 on the PAM line (8 KiB, one pass) so logins stay fast.
FAST_KDF = "offline_key_func=Argon2_i;min_mem:8,max_mem:8,iterations:1,threads:1"
SECRET_B32 = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def totp_code(now, secret=SECRET_B32, period=30):
    from otpme_auth.otp.base32 import b32decode
    from otpme_auth.otp.hotp import totp
    return totp(b32decode(secret), now, step=period)


def fake_answer(user="alice", token=None, second_factor=False, last_counter=-1, keep=False,
                expiry=None, unused=7 * DAY, session_id="s1", policy=None, revision="rev-1"):
    """A server's ok answer shaped as docs/protocol.md says (offline enabled).

    ``revision``: the entry's ``key_revision`` (None: a server that sends none)."""
    import time
    token = token or "%s/pass" % user
    now = time.time()
    entry = {"token": token, "type": "password", "session_keep": keep, "verify": "password",
             "expiry": expiry if expiry is not None else now + 30 * DAY, "unused_expiry": unused,
             "second_factor": None}
    if revision is not None:
        entry["key_revision"] = revision
    if second_factor:
        entry["second_factor"] = {"token": "%s/totp" % user, "type": "totp", "secret": SECRET_B32,
                                  "digits": 6, "algorithm": "SHA1", "period": 30,
                                  "last_counter": last_counter}
    return {"status": "ok", "user": user, "token": token, "token_type": "password",
            "session": {"id": session_id, "expires": now + 8 * 3600, "keep": keep},
            "offline": [entry], "shares": [], "auto_mount": False, "ssh_keys": [],
            "greeting": "Welcome, %s." % user, "password_policy": policy}


def fake_online(answer=None, reachable=True, password=PW):
    """A plugin named like online: ALLOW with ``answer`` if the typed text starts with
    ``password``, DENY otherwise; UNAVAILABLE when not ``reachable``."""
    from otpme_auth import PASSWORD, allow, deny, unavailable
    from otpme_auth.keys import LOGIN_ANSWER
    from otpme_auth_offline.keys import OFFLINE_FIRST
    from otpme_auth.testing import make_plugin

    def collect(ctx):
        ctx.ask_authtok("Password: ")

    def verify(ctx):
        if not reachable or ctx.stash.get(OFFLINE_FIRST):
            return unavailable("server down (stand-in)")
        if not ctx.credentials[PASSWORD].reveal().startswith(password):
            return deny("refused (stand-in)")
        ctx.stash[LOGIN_ANSWER] = answer if answer is not None else fake_answer(ctx.user)
        return allow("stand-in server")
    return make_plugin("online", otpme_auth_collect_credentials=collect,
                       otpme_auth_verify=verify)
