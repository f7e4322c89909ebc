"""Concurrent logins of one user and writers killed mid-write: processes, not threads."""

import json
import multiprocessing
import os
import random
import signal
import time

from otpme_auth_offline.cache import DecryptFailed, OfflineCache, Throttle

from offline_testlib import Clock, root, store  # noqa: F401 (fixture)

FORK = multiprocessing.get_context("fork")
PW = "correct horse"


def _cache(root):
    return OfflineCache(root, clock=Clock(), throttle=Throttle(free=10 ** 9))


def _increment(root, times):
    cache = _cache(root)

    def bump(payload, code):
        data = json.loads(payload)
        data["n"] += 1
        time.sleep(0.001)       # widen the race window
        return json.dumps(data).encode()

    for _ in range(times):
        cache.unlock("alice", "alice/pass", PW, change=bump)


def _run(target, args_list, timeout=60):
    workers = [FORK.Process(target=target, args=args) for args in args_list]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout)
    return [w.exitcode for w in workers]


def test_concurrent_unlocks_lose_no_update(root):
    store(_cache(root))
    assert _run(_increment, [(root, 10)] * 8) == [0] * 8
    assert json.loads(_cache(root).unlock("alice", "alice/pass", PW).payload) == {"n": 80}


def _use_code(root, results):
    cache = _cache(root)

    def consume(payload, code):
        data = json.loads(payload)
        if code.reveal() in data["used"]:
            raise ValueError("replayed")
        data["used"].append(code.reveal())
        return json.dumps(data).encode()
    try:
        cache.unlock("alice", "alice/pass", PW + "424242", change=consume)
        results.put("ok")
    except ValueError:
        results.put("replayed")


def test_the_same_code_in_concurrent_logins_succeeds_once(root):
    store(_cache(root), secret=PW + "000000", otp_digits=6, payload=b'{"used": []}')
    results = FORK.Queue()
    assert _run(_use_code, [(root, results)] * 8) == [0] * 8
    outcomes = sorted(results.get(timeout=5) for _ in range(8))
    assert outcomes == ["ok"] + ["replayed"] * 7


def _store_tokens(root, worker):
    cache = _cache(root)
    for i in range(5):
        store(cache, user="carol", token="carol/t%d" % (i % 3), secret="pw%d" % worker,
              payload=b"%d" % worker)


def test_concurrent_stores_of_one_new_user(root):
    # Eight logins of a user with no directory yet, storing overlapping tokens.
    assert _run(_store_tokens, [(root, w) for w in range(8)]) == [0] * 8
    cache = _cache(root)
    assert cache.list_tokens("carol") == ["carol/t0", "carol/t1", "carol/t2"]
    for token in cache.list_tokens("carol"):
        # Each file is whole and belongs to exactly one writer: its secret opens its payload.
        winners = []
        for w in range(8):
            try:
                winners.append((w, cache.unlock("carol", token, "pw%d" % w).payload))
            except DecryptFailed:
                pass
        assert len(winners) == 1 and winners[0][1] == b"%d" % winners[0][0]
    assert sorted(os.listdir(os.path.join(root, "carol"))) == [
        "failures", "token.carol%2Ft0", "token.carol%2Ft1", "token.carol%2Ft2"]


def _write_forever(root, written):
    cache = _cache(root)
    n = 0
    while True:
        n += 1
        # Alternate a full store (new salt, KDF) with an unlock that rewrites.
        store(cache, payload=json.dumps({"n": n, "pad": "x" * 4000}).encode())
        written.value = n
        cache.unlock("alice", "alice/pass", PW)


def _kill_a_writer(target, root, rng, trial):
    """Start ``target(root, written)`` and SIGKILL it a random moment later.

    Every tenth writer is first let finish one write, however loaded the machine:
    kills that all land before the first write would prove nothing.
    """
    written = FORK.Value("i", 0)
    writer = FORK.Process(target=target, args=(root, written))
    writer.start()
    if trial % 10 == 0:
        deadline = time.monotonic() + 30
        while written.value < 1 and time.monotonic() < deadline:
            time.sleep(0.001)
    time.sleep(rng.uniform(0, 0.02))
    os.kill(writer.pid, signal.SIGKILL)
    writer.join()


def test_killed_writers_leave_old_or_new_never_broken(root):
    store(_cache(root), payload=json.dumps({"n": 0, "pad": "x" * 4000}).encode())
    rng = random.Random(5)
    seen = set()
    for trial in range(200):
        _kill_a_writer(_write_forever, root, rng, trial)
        data = json.loads(_cache(root).unlock("alice", "alice/pass", PW).payload)
        assert data["pad"] == "x" * 4000, "trial %d" % trial
        seen.add(data["n"])
    assert max(seen) >= 1, "no killed writer had written: the test proved nothing"
    store(_cache(root), payload=b"after")
    assert _cache(root).unlock("alice", "alice/pass", PW).payload == b"after"
    leftovers = [n for n in os.listdir(os.path.join(root, "alice")) if n.endswith(".tmp")]
    assert len(leftovers) <= 2      # at most a killed writer's temp file per state file


def _reseal_forever(root, written):
    cache = _cache(root)
    # Like the plugin: never below the counter the cache holds (store() refuses to lower it).
    n = max(0, cache.known_counter("alice", "alice/pass", b"rev-1"))
    while True:
        n += 1
        # The online path without a derivation (same key revision), and an offline unlock.
        # (None: a killed writer had already written this n; nothing changed, nothing written.)
        assert store(cache, payload=json.dumps({"n": n, "pad": "x" * 4000}).encode(),
                     revision=b"rev-1", counter=n) in (False, None)
        written.value = n
        cache.unlock("alice", "alice/pass", PW)


def test_killed_resealing_writers_leave_old_or_new_never_broken(root):
    assert store(_cache(root), payload=json.dumps({"n": 0, "pad": "x" * 4000}).encode(),
                 revision=b"rev-1") is True
    rng = random.Random(7)
    seen = set()
    for trial in range(200):
        _kill_a_writer(_reseal_forever, root, rng, trial)
        cache = _cache(root)
        data = json.loads(cache.unlock("alice", "alice/pass", PW).payload)
        assert data["pad"] == "x" * 4000, "trial %d" % trial
        # the state the online path reads without the password is the one sealed with it
        assert cache.known_counter("alice", "alice/pass", b"rev-1") == (data["n"] or -1)
        seen.add(data["n"])
    assert max(seen) >= 1, "no killed writer had resealed the cache: the test proved nothing"
