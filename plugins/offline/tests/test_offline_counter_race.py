"""Review (attacker's view): an online login reads the cached counter (``known_counter``,
no lock) before it takes the file's lock in ``store``.  An offline login of the same token
in between (the server reachable for one login, not for the other) advances the counter
under the lock; the online login then wrote its older counter back, and the code used
offline was accepted offline a second time.  store() must never lower a counter that a
state verified under the same revision holds.
"""

import json

import pytest

from otpme_auth.otp.base32 import b32decode
from otpme_auth.otp.hotp import hotp
from otpme_auth_offline import _code_checker
from otpme_auth_offline.cache import CacheRefused, OfflineCache

from offline_testlib import SECRET_B32, TINY, clock, root  # noqa: F401

USER, TOKEN, PIN = "alice", "alice/hotp", "4711"
REV = b"rev-1"


def _payload(counter):
    entry = {"token": TOKEN, "type": "hotp", "secret": SECRET_B32, "digits": 6,
             "algorithm": "SHA1", "last_counter": counter, "key_revision": "rev-1"}
    return json.dumps({"v": 1, "entry": entry, "answer": {"user": USER}}).encode()


def _online(cache, counter, known):
    """The plugin's _store: counter = max(server's, the cache's), payload built, store()."""
    counter = max(counter, known)
    payload = _payload(counter)
    return cache.store(USER, TOKEN, PIN + "000000", payload, 7 * 86400, cache.clock() + 30 * 86400,
                       TINY, otp_digits=6, counter=counter, revision=REV, stable=payload)


def _offline(cache, counter):
    code = hotp(b32decode(SECRET_B32), counter)
    return cache.unlock(USER, TOKEN, PIN + code, change=_code_checker(cache, []))


def test_an_online_store_never_lowers_a_counter_an_offline_login_advanced(root, clock):
    cache = OfflineCache(root, clock=clock)
    _online(cache, 4, -1)
    known = cache.known_counter(USER, TOKEN, REV)          # the online login reads 4 ...
    assert known == 4
    _offline(cache, 5)                                     # ... an offline login uses code 5
    assert cache.known_counter(USER, TOKEN, REV) == 5
    clock.now += 1
    try:
        _online(cache, 4, known)                           # ... and the online one stores 4
    except CacheRefused:
        pass                                               # refused: the file keeps 5
    with pytest.raises(Exception):
        _offline(cache, 5)                                 # code 5 must not log in again
    assert cache.known_counter(USER, TOKEN, REV) >= 5
