"""An online login that would write nothing new into a fresh cache writes nothing (issue 11).

Format 3 keeps a content tag (HMAC of the payload's stable part under a key from
the server's key revision) in the MAC'd state.  When it matches, the counter and
unused expiry are the same and the expiries were moved less than ``REFRESH``
seconds ago, ``store`` leaves the file alone: no reseal, so no cryptography import
and no fsync.  Counted (writes, seals, derivations, imported modules), never timed.
"""

import json
import os

import pytest

import otpme_auth_offline.cache as cache_mod
from otpme_auth_offline.cache import (REFRESH, VERSION, Header, OfflineCache, new_key_pair,
                                      parse, seal_payload, wrap_private_key)
from otpme_auth_offline.keyfunc import derive_key

from offline_testlib import (DAY, FAST_KDF, NOW, PW, TINY, clock, derivations, root,  # noqa: F401
                             store)

PAYLOAD = b'{"n": 0}'


@pytest.fixture
def seals(monkeypatch):
    """Every sealed write of the cache module (a list: its length is the count)."""
    calls = []
    real = cache_mod.seal_payload

    def counting(*args, **kw):
        calls.append(args[1:3])
        return real(*args, **kw)
    monkeypatch.setattr(cache_mod, "seal_payload", counting)
    return calls


def _path(root):
    return os.path.join(root, "alice", "token.alice%2Fpass")


def _file(root):
    st = os.stat(_path(root))
    with open(_path(root), "rb") as fh:
        return fh.read(), st.st_ino, st.st_mtime_ns


def test_same_content_writes_nothing(root, clock, seals, derivations):
    cache = OfflineCache(root, clock=clock)
    assert store(cache, revision=b"rev-1", counter=3) is True          # the first: a key
    before = _file(root)
    assert parse(before[0])[0].version == VERSION
    for step in (1, 60, REFRESH - 1):
        clock.now = NOW + step
        assert store(cache, revision=b"rev-1", counter=3, absolute=NOW + 30 * DAY + step,
                     stable=PAYLOAD) is None
    assert len(seals) == 1 and len(derivations) == 1   # nothing sealed or derived again
    assert _file(root) == before                       # same bytes, same inode, same mtime
    assert cache.unlock("alice", "alice/pass", "correct horse").payload == PAYLOAD


def test_the_stable_part_is_what_is_compared(root, clock, seals):
    """The plugin passes the payload without the absolute expiry: a new expiry alone (in
    the payload) is not a change; anything else is."""
    cache = OfflineCache(root, clock=clock)
    assert store(cache, revision=b"rev-1", payload=b'{"e": 1, "x": 1}', stable=b'{"x": 1}')
    assert store(cache, revision=b"rev-1", payload=b'{"e": 2, "x": 1}',
                 stable=b'{"x": 1}') is None
    assert store(cache, revision=b"rev-1", payload=b'{"e": 2, "x": 2}',
                 stable=b'{"x": 2}') is False
    assert len(seals) == 2
    assert cache.unlock("alice", "alice/pass", "correct horse").payload == b'{"e": 2, "x": 2}'


@pytest.mark.parametrize("change", ["payload", "counter", "unused", "expiry back",
                                    "expiry far", "last used old", "no revision"])
def test_every_change_is_written(root, clock, seals, derivations, change):
    cache = OfflineCache(root, clock=clock)
    store(cache, revision=b"rev-1", counter=3)
    kw = dict(revision=b"rev-1", counter=3, payload=PAYLOAD, absolute=NOW + 30 * DAY)
    if change == "payload":
        kw["payload"] = b'{"n": 1}'
    elif change == "counter":
        kw["counter"] = 4
    elif change == "unused":
        kw["unused"] = 6 * DAY
    elif change == "expiry back":          # the server shortened offline_expiry: now
        kw["absolute"] = NOW + 29 * DAY
    elif change == "expiry far":
        kw["absolute"] = NOW + 30 * DAY + REFRESH
    elif change == "last used old":
        clock.now = NOW + REFRESH
    elif change == "no revision":
        kw["revision"] = None
    written = store(cache, **kw)
    assert written is (True if change == "no revision" else False)
    assert len(seals) == 2
    header = parse(_file(root)[0])[0]
    assert (header.counter, header.unused_expiry, header.expires) == (
        kw["counter"], kw.get("unused", 7 * DAY), kw["absolute"])
    assert cache.unlock("alice", "alice/pass", "correct horse").payload == kw["payload"]


def test_refresh_is_at_most_a_hundredth_of_the_unused_expiry(root, clock, seals):
    cache = OfflineCache(root, clock=clock)
    store(cache, revision=b"rev-1", unused=1000)
    clock.now = NOW + 10                                   # 1000 // 100
    assert store(cache, revision=b"rev-1", unused=1000) is False


def test_an_offline_code_makes_the_next_online_login_write(root, clock, seals):
    """An unlock that changes the payload (a code used offline) clears the content tag."""
    cache = OfflineCache(root, clock=clock)
    store(cache, revision=b"rev-1")
    cache.unlock("alice", "alice/pass", "correct horse", change=lambda p, c: b'{"n": 9}')
    assert parse(_file(root)[0])[0].content == bytes(32)
    assert store(cache, revision=b"rev-1") is False      # resealed with the server's payload
    assert cache.unlock("alice", "alice/pass", "correct horse").payload == PAYLOAD


def test_altered_content_tag_is_not_trusted(root, clock, derivations):
    cache = OfflineCache(root, clock=clock)
    store(cache, revision=b"rev-1")
    data = bytearray(_file(root)[0])
    header = parse(bytes(data))[0]
    at = len(header.pack_key_block()) + 36                # the tag follows the counter
    assert bytes(data[at:at + 32]) == header.content
    data[at] ^= 1
    with open(_path(root), "wb") as fh:
        fh.write(bytes(data))
    assert store(cache, revision=b"rev-1") is True       # the MAC failed: a new key
    assert len(derivations) == 2


def _write_v2(root, cache, revision=b"rev-1", counter=5):
    """A cache file as format 2 wrote it (no content tag)."""
    store(cache, revision=revision)            # makes the directories
    header = Header(TINY, os.urandom(16), b"", NOW, NOW, NOW + 30 * DAY, 7 * DAY, version=2,
                    counter=counter)
    private, _ = new_key_pair()
    wrap_private_key(derive_key(b"correct horse", header.salt, TINY), private, header,
                     "alice", "alice/pass")
    data = seal_payload(header, "alice", "alice/pass", revision, PAYLOAD)
    with open(_path(root), "wb") as fh:
        fh.write(data)
    assert len(data) == cache_mod.V2_HEADER_LEN + 1 + len(revision) + len(PAYLOAD) + 16


def test_format_2_is_read_and_migrated(root, clock, derivations):
    cache = OfflineCache(root, clock=clock)
    _write_v2(root, cache)
    assert cache.known_counter("alice", "alice/pass", b"rev-1") == 5   # its MAC verifies
    before = len(derivations)
    assert cache.unlock("alice", "alice/pass", "correct horse").payload == PAYLOAD
    assert len(derivations) == before + 1                 # one derivation, no second
    header = parse(_file(root)[0])[0]
    assert header.version == VERSION and header.counter == 5
    assert cache.unlock("alice", "alice/pass", "correct horse").payload == PAYLOAD


def test_format_2_online_gets_a_new_key_once(root, clock, derivations):
    cache = OfflineCache(root, clock=clock)
    _write_v2(root, cache)
    before = len(derivations)
    # counter=5: the plugin passes at least known_counter (5); a lower one is refused.
    assert store(cache, revision=b"rev-1", counter=5) is True   # format 3 needs a new wrap: once
    assert store(cache, revision=b"rev-1", counter=5) is None
    assert len(derivations) == before + 1


def test_second_online_login_imports_no_cryptography_and_writes_nothing(tmp_path, realm,
                                                                         system_user):
    """Through the real server, in a fresh interpreter as pam_python starts one: the
    second online login with a fresh cache imports neither cryptography nor argon2 (nor
    secrets, nor the strength module), and the cache file is not rewritten (same inode,
    same mtime)."""
    from otpme_auth.testing.imports import login_imports
    user = system_user()
    realm.add_user(user, PW, offline=True)
    jotp = realm.add_host("h1", tokens=["%s/pass" % user])
    realm.start()
    conf = realm.join("h1", jotp)
    root = tmp_path / "offline"
    args = ["online", "cache_login_tokens", "host_config=%s" % conf, "offline_cache_dir=%s" % root,
            FAST_KDF]
    code, modules = login_imports(tmp_path / "probe", args, user=user, answers=[PW])
    assert code == "SUCCESS"
    path = os.path.join(root, user, "token.%s%%2Fpass" % user)
    st = os.stat(path)
    assert parse(open(path, "rb").read())[0].version == VERSION
    leaked = sorted(m for m in modules if m.split(".")[0] in ("cryptography", "argon2")
                    or m in ("secrets", "random", "otpme_auth_offline.strength"))
    assert leaked == []   # (secrets pulls in random; strength only with a strength check)
    code, modules = login_imports(tmp_path / "probe", args, user=user, answers=[PW])
    assert code == "SUCCESS"
    again = os.stat(path)
    assert (again.st_ino, again.st_mtime_ns) == (st.st_ino, st.st_mtime_ns)
    # ... and the untouched cache still logs in offline.
    realm.stop()
    code, _ = login_imports(tmp_path / "probe", args, user=user, answers=[PW])
    assert code == "SUCCESS"


def test_writing_a_cache_never_imports_serialization(tmp_path):
    """A derivation and a reseal use the raw key methods: ``cryptography``'s serialization
    package (its ssh module pulls in dataclasses, inspect, ast) stays out of a login."""
    import subprocess
    import sys
    code = """
import json, sys
from otpme_auth_offline.cache import OfflineCache
from otpme_auth_offline.keyfunc import KdfParams
cache = OfflineCache(sys.argv[1])
p = KdfParams("Argon2_i", 1, 8, 1)
first = cache.store("alice", "alice/pass", "pw", b"1", 86400, 2 ** 40, p, revision=b"r")
again = cache.store("alice", "alice/pass", "pw", b"2", 86400, 2 ** 40, p, revision=b"r")
opened = cache.unlock("alice", "alice/pass", "pw").payload
heavy = "cryptography.hazmat.primitives.serialization"
print(json.dumps([first, again, opened.decode(), sorted(
    m for m in sys.modules if m == heavy or m.startswith(heavy + "."))]))
"""
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "offline")], check=True,
                         capture_output=True, text=True).stdout
    assert json.loads(out) == [True, False, "2", []]
