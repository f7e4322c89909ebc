"""The cache: round trips, refusals, tamper, expiry, throttling, pinning, parameters."""

import json
import os

import pytest

from otpme_auth.context import Secret
from otpme_auth.errors import StateFileError
from otpme_auth_offline.cache import (
    HEADER_LEN, CacheCorrupt, CacheExpired, CacheRefused, DecryptFailed, NoCache, OfflineCache,
    PinMismatch, Throttle, Throttled, UnknownVersion, decode_name, encode_name, parse)
from otpme_auth_offline.keyfunc import DEFAULT_KEY_FUNC, choose_params

from offline_testlib import DAY, NOW, TINY, TINY2, cache, clock, root, store  # noqa: F401 (fixtures)

PW = "correct horse"
CHECK_FAILED = (CacheCorrupt, DecryptFailed)


def token_file(root, user="alice", token="alice/pass"):
    return os.path.join(root, encode_name(user), "token." + encode_name(token))


def rewrite(path, data):
    with open(path, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)


# -- round trips -----------------------------------------------------------

def test_round_trip_and_layout(cache, root):
    store(cache, payload=b'{"token": "alice/pass"}')
    got = cache.unlock("alice", "alice/pass", PW)
    assert got.payload == b'{"token": "alice/pass"}'
    assert got.header.authenticated and got.code is None
    assert got.header.params == TINY
    for path, mode in ((root, 0o700), (os.path.join(root, "alice"), 0o700),
                       (token_file(root), 0o600)):
        st = os.lstat(path)
        assert (st.st_mode & 0o7777, st.st_uid) == (mode, os.geteuid()), path
    assert cache.list_tokens("alice") == ["alice/pass"]
    assert cache.list_tokens("nobody") == []


def test_secret_object_and_bytes_work(cache):
    store(cache, secret=Secret(PW))
    assert cache.unlock("alice", "alice/pass", PW.encode()).payload == b'{"n": 0}'
    assert cache.unlock("alice", "alice/pass", Secret(PW)).payload == b'{"n": 0}'


def test_wrong_password(cache):
    store(cache)
    with pytest.raises(DecryptFailed, match="wrong secret, or the file was altered") as exc:
        cache.unlock("alice", "alice/pass", "correct horsf")
    assert PW not in str(exc.value) and "horsf" not in str(exc.value)


def test_no_cache(cache):
    with pytest.raises(NoCache):
        cache.unlock("alice", "alice/pass", PW)
    store(cache)
    with pytest.raises(NoCache, match="token alice/other: there is none"):
        cache.unlock("alice", "alice/other", PW)


def test_second_factor_code_is_split_off(cache):
    # A password token with a 6-digit TOTP second factor: typed = password + code.
    store(cache, secret=PW + "123456", otp_digits=6)
    got = cache.unlock("alice", "alice/pass", PW + "987654")
    assert isinstance(got.code, Secret) and got.code.reveal() == "987654"
    assert "987654" not in repr(got)
    with pytest.raises(DecryptFailed):
        cache.unlock("alice", "alice/pass", PW)          # the code is missing
    with pytest.raises(DecryptFailed):
        cache.unlock("alice", "alice/pass", "123")       # shorter than the code


def test_nothing_static_is_refused(cache):
    with pytest.raises(CacheRefused, match="nothing static"):
        store(cache, secret="")
    with pytest.raises(CacheRefused, match="nothing static"):
        store(cache, secret="123456", otp_digits=6)      # a bare OTP with no PIN


def test_public_part_is_readable_before_unlock_and_authenticated(cache, root):
    store(cache, public=b"challenge-1")
    info = cache.info("alice", "alice/pass")
    assert info.public == b"challenge-1" and not info.authenticated
    assert cache.unlock("alice", "alice/pass", PW).header.public == b"challenge-1"


def test_names_are_encoded_safely():
    for name in ("alice", "alice/pass", "..x", "ä/ß", "a%2Fb", "-x", "a b"):
        enc = encode_name(name)
        assert "/" not in enc and enc not in (".", "..") and decode_name(enc) == name
    assert encode_name("a/b") != encode_name("a%2Fb")
    for bad in ("", ".", "..", "a\0b", "x" * 201):
        with pytest.raises(ValueError):
            encode_name(bad)


def test_no_secret_in_reprs(cache):
    store(cache)
    got = cache.unlock("alice", "alice/pass", PW)
    for text in (repr(got), repr(got.header), repr(cache), repr(cache.info("alice", "alice/pass"))):
        assert PW not in text and "salt" not in text


# -- tamper, truncation, moving -------------------------------------------

def test_every_single_byte_flip_is_detected(cache, root):
    store(cache, payload=b"payload!", public=b"pub", otp_digits=0)
    path = token_file(root)
    original = open(path, "rb").read()
    assert len(original) == HEADER_LEN + 3 + 1 + 8 + 16   # + the revision length byte
    kinds = set()
    for pos in range(len(original)):
        for mask in (0x01, 0x80):
            data = bytearray(original)
            data[pos] ^= mask
            rewrite(path, bytes(data))
            with pytest.raises(CHECK_FAILED) as exc:
                cache.unlock("alice", "alice/pass", PW)
            kinds.add(type(exc.value))
            assert PW not in str(exc.value) and "\n" not in str(exc.value)
            assert open(path, "rb").read() == bytes(data)   # nothing rewritten on failure
    assert kinds >= {CacheCorrupt, UnknownVersion, DecryptFailed}
    rewrite(path, original)
    assert cache.unlock("alice", "alice/pass", PW).payload == b"payload!"


def test_truncation_at_every_length_is_detected(cache, root):
    store(cache, payload=b"payload!")
    path = token_file(root)
    original = open(path, "rb").read()
    for length in range(len(original)):
        rewrite(path, original[:length])
        with pytest.raises(CHECK_FAILED):
            cache.unlock("alice", "alice/pass", PW)
    rewrite(path, original + b"x")
    with pytest.raises(DecryptFailed):
        cache.unlock("alice", "alice/pass", PW)


def test_messages_for_unauthenticated_damage(cache, root):
    store(cache)
    path = token_file(root)
    original = open(path, "rb").read()
    cases = [(b"", CacheCorrupt, "truncated \\(0 bytes"),
             (b"NOTACACHEFILE" + original[13:], CacheCorrupt, "bad magic"),
             (original[:8] + b"\x07" + original[9:], UnknownVersion, "format version 7; this version reads 1"),
             (original[:40], CacheCorrupt, "truncated")]
    for data, kind, message in cases:
        rewrite(path, data)
        with pytest.raises(kind, match=message):
            cache.unlock("alice", "alice/pass", PW)


def test_moving_a_file_to_another_user_or_token_is_detected(cache, root):
    store(cache)
    store(cache, user="bob", token="bob/pass", secret="bobs secret")
    data = open(token_file(root), "rb").read()
    # The same token name under bob, and another token name under alice.
    rewrite(token_file(root, "bob", "alice/pass"), data)
    os.chmod(token_file(root, "bob", "alice/pass"), 0o600)
    with pytest.raises(DecryptFailed):
        cache.unlock("bob", "alice/pass", PW)
    rewrite(token_file(root, "alice", "alice/other"), data)
    os.chmod(token_file(root, "alice", "alice/other"), 0o600)
    with pytest.raises(DecryptFailed):
        cache.unlock("alice", "alice/other", PW)
    assert cache.unlock("alice", "alice/pass", PW)


# -- files that are not safe ------------------------------------------------

def test_wrong_mode_and_owner_are_refused(cache, root):
    store(cache)
    path = token_file(root)
    os.chmod(path, 0o644)
    with pytest.raises(StateFileError, match="mode 0644"):
        cache.unlock("alice", "alice/pass", PW)
    os.chmod(path, 0o600)
    os.chown(path, 65534, 65534)
    with pytest.raises(StateFileError, match="owned by uid 0, not 65534"):
        cache.unlock("alice", "alice/pass", PW)
    os.chown(path, 0, 0)
    udir = os.path.join(root, "alice")
    os.chmod(udir, 0o755)
    with pytest.raises(StateFileError, match="mode 0755"):
        cache.unlock("alice", "alice/pass", PW)
    with pytest.raises(StateFileError):
        store(cache)
    os.chmod(udir, 0o700)
    os.chown(udir, 65534, 65534)
    with pytest.raises(StateFileError, match="owned by uid 0"):
        cache.unlock("alice", "alice/pass", PW)
    os.chown(udir, 0, 0)
    os.chmod(root, 0o777)
    with pytest.raises(StateFileError, match="mode 0777"):
        cache.unlock("alice", "alice/pass", PW)
    os.chmod(root, 0o700)
    assert cache.unlock("alice", "alice/pass", PW)


def test_symlinked_user_directory_is_never_followed(cache, root, tmp_path):
    store(cache, user="bob", token="bob/pass")
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    os.symlink(target, os.path.join(root, "mallory"))
    with pytest.raises(StateFileError, match="symlink"):
        store(cache, user="mallory", token="mallory/pass")
    with pytest.raises(StateFileError, match="symlink"):
        cache.unlock("mallory", "mallory/pass", PW)
    assert os.listdir(target) == []


def test_symlinked_token_file_is_never_followed(cache, root, tmp_path):
    store(cache)
    victim = tmp_path / "victim"
    victim.write_bytes(b"do not touch")
    os.chmod(victim, 0o600)
    link = token_file(root, "alice", "alice/link")
    os.symlink(victim, link)
    with pytest.raises(StateFileError, match="symlink"):
        store(cache, token="alice/link")
    with pytest.raises(StateFileError, match="symlink"):
        cache.unlock("alice", "alice/link", PW)
    assert victim.read_bytes() == b"do not touch"
    assert os.path.islink(link)
    # And the pin and failure files likewise.
    os.symlink(victim, os.path.join(root, "alice", "pin"))
    with pytest.raises(StateFileError, match="symlink"):
        cache.unlock("alice", "alice/pass", PW)
    assert victim.read_bytes() == b"do not touch"


def test_symlinked_root_is_refused(tmp_path, clock):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    os.symlink(real, tmp_path / "link")
    cache = OfflineCache(str(tmp_path / "link"), clock=clock)
    with pytest.raises(StateFileError, match="symlink|not a directory"):
        store(cache)
    assert os.listdir(real) == []


# -- expiry ----------------------------------------------------------------

def test_absolute_expiry(cache, clock):
    store(cache, absolute=NOW + 10 * DAY, unused=30 * DAY)
    clock.now = NOW + 10 * DAY - 1
    assert cache.unlock("alice", "alice/pass", PW)
    clock.now = NOW + 10 * DAY
    with pytest.raises(CacheExpired, match="absolute expiry") as exc:
        cache.unlock("alice", "alice/pass", PW)
    assert exc.value.kind == "absolute"
    assert cache.list_tokens("alice") == []           # removed


def test_unused_expiry_is_refreshed_by_each_unlock(cache, clock):
    store(cache, unused=7 * DAY, absolute=NOW + 60 * DAY)
    for day in (6, 12, 18, 24):          # each within 7 days of the previous use
        clock.now = NOW + day * DAY
        assert cache.unlock("alice", "alice/pass", PW).header.last_used == clock.now
    clock.now += 7 * DAY
    with pytest.raises(CacheExpired, match="unused expiry"):
        cache.unlock("alice", "alice/pass", PW)


def test_expiry_is_not_checked_with_the_wrong_password(cache, clock):
    # An expired cache tells nothing (and is not removed) before authentication.
    store(cache, absolute=NOW + DAY)
    clock.now = NOW + 2 * DAY
    with pytest.raises(DecryptFailed):
        cache.unlock("alice", "alice/pass", "wrong")
    assert cache.list_tokens("alice") == ["alice/pass"]


def test_pushing_the_expiry_back_in_the_header_is_detected(cache, root):
    store(cache, absolute=NOW + DAY)
    path = token_file(root)
    data = bytearray(open(path, "rb").read())
    data[64:72] = (NOW + 999 * DAY).to_bytes(8, "big")
    rewrite(path, bytes(data))
    with pytest.raises(DecryptFailed):
        cache.unlock("alice", "alice/pass", PW)


# -- throttling ------------------------------------------------------------

def test_throttling_steps_and_reset(root, clock):
    cache = OfflineCache(root, clock=clock, throttle=Throttle(free=3, base=5, cap=20))
    store(cache)
    for attempt in range(1, 4):
        with pytest.raises(DecryptFailed, match="failed attempt %d" % attempt):
            cache.unlock("alice", "alice/pass", "wrong")
    # 3 failures: the next attempt must wait 5 s, then 10 s, then 20 s (the cap).
    for delay in (5, 10, 20, 20):
        with pytest.raises(Throttled, match="3 failed attempts|failed attempts") as exc:
            cache.unlock("alice", "alice/pass", PW)       # even the right password
        assert 0 < exc.value.retry_after <= delay
        clock.now += delay - 1
        with pytest.raises(Throttled):
            cache.unlock("alice", "alice/pass", PW)
        clock.now += 1
        with pytest.raises(DecryptFailed):
            cache.unlock("alice", "alice/pass", "wrong")
    clock.now += 20
    assert cache.unlock("alice", "alice/pass", PW)
    assert cache.failures("alice")[0] == 0
    for _ in range(3):                                   # a fresh allowance after success
        with pytest.raises(DecryptFailed):
            cache.unlock("alice", "alice/pass", "wrong")


def test_throttling_is_per_user_and_store_resets_it(root, clock):
    cache = OfflineCache(root, clock=clock, throttle=Throttle(free=1, base=60))
    store(cache)
    store(cache, user="bob", token="bob/pass")
    with pytest.raises(DecryptFailed):
        cache.unlock("alice", "alice/pass", "wrong")
    with pytest.raises(Throttled):
        cache.unlock("alice", "alice/pass", PW)
    assert cache.unlock("bob", "bob/pass", PW)
    store(cache)                                         # an online login succeeded
    assert cache.unlock("alice", "alice/pass", PW)


def test_a_clock_set_back_does_not_lock_out_for_longer_than_the_delay(root, clock):
    cache = OfflineCache(root, clock=clock, throttle=Throttle(free=1, base=60))
    store(cache)
    with pytest.raises(DecryptFailed):
        cache.unlock("alice", "alice/pass", "wrong")
    clock.now -= 10 * DAY
    with pytest.raises(Throttled) as exc:
        cache.unlock("alice", "alice/pass", PW)
    assert exc.value.retry_after <= 60


def test_damaged_counter_throttles_rather_than_resets(root, clock):
    cache = OfflineCache(root, clock=clock, throttle=Throttle(free=3, base=60))
    store(cache)
    rewrite(os.path.join(root, "alice", "failures"), b"garbage")
    assert cache.failures("alice") == (3, 0)


# -- pinning ---------------------------------------------------------------

def test_pin_unpin(cache, root):
    store(cache)
    store(cache, token="alice/totp", secret="1234" + "000000", otp_digits=6)
    assert cache.pinned("alice") is None
    with pytest.raises(NoCache, match="cannot pin"):
        cache.pin("alice", "alice/none")
    cache.pin("alice", "alice/pass")
    assert cache.pinned("alice") == "alice/pass"
    st = os.lstat(os.path.join(root, "alice", "pin"))
    assert st.st_mode & 0o777 == 0o600 and st.st_uid == 0
    cache.check_pin("alice", "alice/pass")
    with pytest.raises(PinMismatch, match="pinned to token alice/pass"):
        cache.check_pin("alice", "alice/totp")           # what the online hook calls
    with pytest.raises(PinMismatch):
        cache.unlock("alice", "alice/totp", "1234" + "111111")
    with pytest.raises(PinMismatch):
        store(cache, token="alice/totp", secret="1234" + "000000", otp_digits=6)
    assert cache.unlock("alice", "alice/pass", PW)
    cache.check_pin("bob", "bob/anything")               # no pin, no cache: fine
    assert cache.unpin("alice") and not cache.unpin("alice")
    assert cache.unlock("alice", "alice/totp", "1234" + "111111").code.reveal() == "111111"


def test_a_damaged_pin_refuses_every_token(cache, root):
    store(cache)
    rewrite(os.path.join(root, "alice", "pin"), b"\xff\xfe")
    with pytest.raises(CacheCorrupt, match="not a token name"):
        cache.unlock("alice", "alice/pass", PW)


# -- parameters and updates ---------------------------------------------------

def test_old_parameters_still_unlock_and_are_upgraded(cache):
    store(cache, params=TINY)
    # The PAM line changed: the cache opens with its own parameters ...
    got = cache.unlock("alice", "alice/pass", PW, params=TINY2)
    assert got.payload == b'{"n": 0}'
    # ... and was re-encrypted with the new ones (new salt) on the way.
    info = cache.info("alice", "alice/pass")
    assert info.params == TINY2
    assert cache.unlock("alice", "alice/pass", PW).header.params == TINY2


def test_update_and_change_record_a_used_code(cache):
    store(cache, secret=PW + "000000", otp_digits=6,
          payload=json.dumps({"last_counter": 5}).encode())

    def consume(payload, code):
        data = json.loads(payload)
        counter = int(code.reveal())      # stands for the TOTP counter the code matched
        if counter <= data["last_counter"]:
            raise ValueError("replayed code")
        data["last_counter"] = counter
        return json.dumps(data).encode()

    assert json.loads(cache.unlock("alice", "alice/pass", PW + "000007",
                                   change=consume).payload) == {"last_counter": 7}
    with pytest.raises(ValueError, match="replayed"):
        cache.unlock("alice", "alice/pass", PW + "000007", change=consume)
    cache.update("alice", "alice/pass", PW + "000000", b"new payload")
    assert cache.unlock("alice", "alice/pass", PW + "999999").payload == b"new payload"


def test_change_must_return_bytes(cache):
    store(cache)
    with pytest.raises(CacheRefused, match="change\\(\\) must return bytes"):
        cache.unlock("alice", "alice/pass", PW, change=lambda p, c: "text")
    assert cache.unlock("alice", "alice/pass", PW).payload == b'{"n": 0}'


def test_store_replaces_with_a_new_salt(cache):
    store(cache)
    first = cache.info("alice", "alice/pass")
    store(cache, secret="new password", payload=b"2")
    second = cache.info("alice", "alice/pass")
    assert first.salt != second.salt and first.nonce != second.nonce
    with pytest.raises(DecryptFailed):
        cache.unlock("alice", "alice/pass", PW)
    assert cache.unlock("alice", "alice/pass", "new password").payload == b"2"


def test_remove(cache):
    store(cache)
    store(cache, token="alice/two")
    assert cache.remove("alice", "alice/pass") and not cache.remove("alice", "alice/pass")
    assert cache.list_tokens("alice") == ["alice/two"]
    assert not cache.remove("nobody", "x")


def test_refusals_of_store(cache):
    with pytest.raises(CacheRefused, match="payload"):
        store(cache, payload="text")
    with pytest.raises(CacheRefused, match="payload"):
        store(cache, payload=b"x" * (256 * 1024 + 1))
    with pytest.raises(CacheRefused, match="public"):
        store(cache, public=b"x" * 5000)
    with pytest.raises(ValueError, match="user name"):
        store(cache, user="..")


def test_parse_returns_the_header_fields(cache, root):
    store(cache, absolute=NOW + 5, unused=6, otp_digits=6, secret=PW + "123456")
    header, header_bytes, ciphertext = parse(open(token_file(root), "rb").read())
    assert (header.created, header.last_used, header.expires, header.unused_expiry,
            header.otp_digits) == (NOW, NOW, NOW + 5, 6, 6)
    # the sealed text is one length byte, the server's key revision (none here), the payload
    assert len(header_bytes) == HEADER_LEN and len(ciphertext) == 1 + len(b'{"n": 0}') + 16


def test_seed_default_parameters(cache):
    # The one test with real parameters (seed 000 defaults on this machine).
    params = choose_params(DEFAULT_KEY_FUNC)
    assert params.iterations == 3 and params.threads == 4
    assert 65536 <= params.memory_kib <= 262144
    store(cache, params=params)
    assert cache.unlock("alice", "alice/pass", PW).header.params == params


def test_odd_secrets_key_deterministically(cache):
    store(cache, secret="pa\udcffss" + "123456", otp_digits=6)
    assert cache.unlock("alice", "alice/pass", "pa\udcffss" + "000000").code.reveal() == "000000"
    store(cache, token="alice/b", secret=b"\xff\xfepw" + b"123456", otp_digits=6)
    assert cache.unlock("alice", "alice/b", b"\xff\xfepw" + b"654321").code.reveal() == "654321"
