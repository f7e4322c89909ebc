"""An online login with a fresh offline cache derives no key (issue 11).

Derivations are counted (never timed): ``derive_key`` as the cache module
calls it is wrapped by a counter.  The through-PAM tests with the real server
check the same from outside: a reseal keeps the file's key block (salt,
cache public key, wrapped private key) byte for byte; a derivation replaces it.
"""

import json
import os
import struct

import pytest

from otpme_auth_offline.cache import (AEAD_AES256GCM, VERSION, Header, OfflineCache, _ad, parse)

from offline_testlib import (FAST_KDF, PW, TINY, derivations, fake_answer, fake_online,  # noqa: F401
                             totp_code)
from test_offline_hooks import cache_dir, login


@pytest.fixture
def line(tmp_path):
    return "cache_login_tokens offline_cache_dir=%s %s" % (tmp_path / "offline", FAST_KDF)


def token_path(line, user="alice", token="alice%2Fpass"):
    return os.path.join(cache_dir(line), user, "token." + token)


def key_block(line):
    header = parse(open(token_path(line), "rb").read())[0]
    return header.salt, header.cache_public, header.wrap_nonce, header.wrapped


def online(run_login, line, typed=PW, **kw):
    result = login(run_login, line, typed, fake_online(fake_answer(**kw),
                                                       password=kw.pop("password", PW)))
    assert result.ok, result.log
    return result


def test_fresh_cache_online_login_derives_nothing(run_login, line, derivations):
    online(run_login, line)
    assert len(derivations) == 1                 # the first cache: one key
    block = key_block(line)
    for _ in range(3):
        result = online(run_login, line)
        assert len(derivations) == 1             # zero more
        assert any("unchanged (not rewritten)" in x for x in result.log)
    assert key_block(line) == block
    # ... and the resealed cache still opens offline, with the password.
    result = login(run_login, line, PW, fake_online(reachable=False))
    assert result.ok and result.ctx.offline
    assert len(derivations) == 2


def test_fresh_cache_with_second_factor_derives_nothing(run_login, line, derivations):
    import time
    now = time.time()
    step = int(now) // 30
    online(run_login, line, PW + totp_code(now), second_factor=True, last_counter=step - 5)
    assert len(derivations) == 1
    # an offline code advances the cached counter beyond the server's
    assert login(run_login, line, PW + totp_code(now), fake_online(reachable=False)).ok
    assert len(derivations) == 2
    # online again, the server still behind: no derivation, and the higher counter is kept
    online(run_login, line, PW + totp_code(now), second_factor=True, last_counter=step - 5)
    assert len(derivations) == 2
    payload = OfflineCache(cache_dir(line)).unlock("alice", "alice/pass", PW + "000000").payload
    assert json.loads(payload)["entry"]["second_factor"]["last_counter"] == step
    assert parse(open(token_path(line), "rb").read())[0].counter == step


def test_changed_password_derives(run_login, line, derivations):
    online(run_login, line)
    block = key_block(line)
    new_pw = "a brand new passphrase"
    # The server's key revision changes with the password.
    result = login(run_login, line, new_pw,
                   fake_online(fake_answer(revision="rev-2"), password=new_pw))
    assert result.ok
    assert len(derivations) == 2 and key_block(line) != block
    assert login(run_login, line, new_pw, fake_online(reachable=False)).ok
    assert login(run_login, line, PW, fake_online(reachable=False)).code == "AUTH_ERR"


def test_changed_parameters_derive(run_login, line, derivations):
    online(run_login, line)
    other = line.replace("iterations:1", "iterations:2")
    online(run_login, other)
    assert len(derivations) == 2
    assert parse(open(token_path(line), "rb").read())[0].params.iterations == 2


def test_server_without_revision_derives_every_time(run_login, line, derivations):
    online(run_login, line, revision=None)
    online(run_login, line, revision=None)
    assert len(derivations) == 2
    assert parse(open(token_path(line), "rb").read())[0].mac == bytes(32)
    assert login(run_login, line, PW, fake_online(reachable=False)).ok


def test_altered_state_is_not_trusted_online(run_login, line, derivations):
    import time
    now = time.time()
    step = int(now) // 30
    online(run_login, line, PW + totp_code(now), second_factor=True, last_counter=step - 5)
    path = token_path(line)
    data = bytearray(open(path, "rb").read())
    header = parse(bytes(data))[0]
    # lower the stored counter (the state lies after the key block)
    at = len(header.pack_key_block()) + 28
    assert struct.unpack(">q", data[at:at + 8]) == (step - 5,)
    data[at:at + 8] = struct.pack(">q", 0)
    open(path, "wb").write(bytes(data))
    assert OfflineCache(cache_dir(line)).known_counter("alice", "alice/pass", b"rev-1") == -1
    online(run_login, line, PW + totp_code(now), second_factor=True, last_counter=step - 5)
    assert len(derivations) == 2                 # the MAC failed: a new key, nothing reused


def test_planted_public_key_is_never_sealed_to(run_login, line, derivations):
    """Someone who can write the disk replaces the cache's public key with theirs: the next
    online login must not seal the payload (an OTP secret) to it."""
    from otpme_auth_offline.cache import new_key_pair
    online(run_login, line)
    path = token_path(line)
    data = open(path, "rb").read()
    header, _, ciphertext = parse(data)
    _, planted = new_key_pair()
    header.cache_public = planted
    open(path, "wb").write(header.pack() + ciphertext)
    online(run_login, line)
    assert len(derivations) == 2
    assert parse(open(path, "rb").read())[0].cache_public != planted
    assert login(run_login, line, PW, fake_online(reachable=False)).ok


def write_v1(path, user, token, secret, payload, now, params=TINY, digits=0, public=b""):
    """A cache file as the previous version (format 1) wrote it."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from otpme_auth_offline.keyfunc import derive_key
    salt, nonce = os.urandom(16), os.urandom(12)
    header = Header(params, salt, nonce, now, now, now + 30 * 86400, 7 * 86400, digits, public,
                    AEAD_AES256GCM, 1)
    header_bytes = header.pack()
    key = derive_key(secret.encode(), salt, params)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    os.chmod(os.path.dirname(os.path.dirname(path)), 0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, header_bytes + AESGCM(key).encrypt(nonce, payload, _ad(header_bytes, user, token)))
    os.close(fd)


def v1_payload():
    answer = dict(fake_answer())
    entry = answer.pop("offline")[0]
    answer["session"] = None
    return json.dumps({"v": 1, "entry": entry, "answer": answer}).encode()


def test_old_format_cache_opens_offline_and_is_migrated(run_login, line, derivations):
    import time
    path = token_path(line)
    write_v1(path, "alice", "alice/pass", PW, v1_payload(), int(time.time()),
             public=b'{"type": "password"}')
    assert parse(open(path, "rb").read())[0].version == 1
    result = login(run_login, line, PW, fake_online(reachable=False))
    assert result.ok and result.ctx.offline
    assert len(derivations) == 1                 # migrated with the key just derived
    assert parse(open(path, "rb").read())[0].version == VERSION
    assert login(run_login, line, PW, fake_online(reachable=False)).ok
    assert login(run_login, line, "wrong", fake_online(reachable=False)).code == "AUTH_ERR"


def test_old_format_cache_is_replaced_online(run_login, line, derivations):
    import time
    path = token_path(line)
    write_v1(path, "alice", "alice/pass", "an old password", v1_payload(), int(time.time()),
             public=b'{"type": "password"}')
    online(run_login, line)
    assert parse(open(path, "rb").read())[0].version == VERSION
    assert login(run_login, line, PW, fake_online(reachable=False)).ok


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty", "version"])
def test_damaged_cache_is_replaced_online_never_trusted(run_login, line, derivations, damage):
    online(run_login, line)
    path = token_path(line)
    data = bytearray(open(path, "rb").read())
    if damage == "truncate":
        data = data[:100]
    elif damage == "flip":
        data[20] ^= 1                            # the salt: the key block's MAC fails
    elif damage == "garbage":
        data = bytearray(os.urandom(400))
    elif damage == "empty":
        data = bytearray()
    else:
        data[8] = 9
    open(path, "wb").write(bytes(data))
    result = online(run_login, line)             # the online login is not harmed by it
    assert len(derivations) == 2                 # and the damaged file is not reused
    assert not any("Traceback" in x for x in result.log)
    assert login(run_login, line, PW, fake_online(reachable=False)).ok


@pytest.mark.parametrize("damage", ["flip_state", "flip_payload", "flip_mac"])
def test_tampered_resealed_cache_refused_offline(run_login, line, damage):
    online(run_login, line)
    online(run_login, line)                      # resealed without the password
    path = token_path(line)
    data = bytearray(open(path, "rb").read())
    header = parse(bytes(data))[0]
    at = {"flip_state": len(header.pack_key_block()) + 17,   # expiry
          "flip_mac": len(header.pack_key_block()) + 36 + 3,
          "flip_payload": len(data) - 20}[damage]
    data[at] ^= 0x80
    open(path, "wb").write(bytes(data))
    result = login(run_login, line, PW, fake_online(reachable=False))
    assert result.code == "AUTH_ERR"
    assert any("wrong secret, or the file was altered" in x for x in result.log)
