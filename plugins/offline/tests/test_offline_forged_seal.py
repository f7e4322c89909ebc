"""Review (attacker's view) of format 3's unchanged-login skip: the seal is not bound to
the state MAC, so a payload sealed to the cache's public key by someone who can write the
file (no password, no revision) was kept by every online login within REFRESH.

Before format 3 each online login resealed the server's payload over it; with the skip
the forged payload stayed, and the user's next offline login opened it.
"""

import os

from otpme_auth_offline.cache import OfflineCache, parse

from offline_testlib import NOW, clock, root, store  # noqa: F401

USER, TOKEN = "alice", "alice/pass"
SERVER = b'{"server": "truth"}'
FORGED = b'{"server": "forged", "shares": ["//evil/share"]}'


def _path(root):
    return os.path.join(root, "alice", "token.alice%2Fpass")


def _forge_seal(data, payload, revision=b""):
    """What anyone who can write the file can do: seal ``payload`` to the cache's public
    key (on disk) with a fresh ephemeral key and nonce, keeping the key block, the state
    and its MAC as they are (nothing here needs the password or the server's revision)."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import (X25519PrivateKey,
                                                                  X25519PublicKey)
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    import otpme_auth_offline.cache as c
    header = parse(data)[0]
    eph = X25519PrivateKey.generate()
    header.ephemeral = eph.public_key().public_bytes_raw()
    shared = eph.exchange(X25519PublicKey.from_public_bytes(header.cache_public))
    key = c._hkdf(shared, c._SEAL_LABEL + header.ephemeral + header.cache_public)
    header.nonce = os.urandom(c.NONCE_LEN)
    header_bytes = header.pack()          # the MAC is the original one
    plain = bytes((len(revision),)) + revision + payload
    return header_bytes + AESGCM(key).encrypt(header.nonce, plain,
                                              c._ad(header_bytes, USER, TOKEN))


def test_a_forged_seal_does_not_survive_an_online_login(root, clock):
    cache = OfflineCache(root, clock=clock)
    assert store(cache, revision=b"rev-1", payload=SERVER) is True
    with open(_path(root), "rb") as fh:
        data = fh.read()
    with open(_path(root), "wb") as fh:   # same file, same owner and mode
        fh.write(_forge_seal(data, FORGED))
    # The forgery alone opens with the password (as in format 2, until an online login).
    clock.now = NOW + 60
    assert cache.unlock(USER, TOKEN, "correct horse").payload == FORGED
    with open(_path(root), "wb") as fh:
        fh.write(_forge_seal(data, FORGED))
    # An online login that sends the same answer must put the server's payload back.
    clock.now = NOW + 120
    store(cache, revision=b"rev-1", payload=SERVER)
    assert cache.unlock(USER, TOKEN, "correct horse").payload == SERVER


def test_a_forged_seal_is_not_resealed_as_valid(root, clock):
    """The MAC covers the seal: a forged one fails it online, so it is replaced with a new
    key pair (as any altered file), never left in place or resealed."""
    cache = OfflineCache(root, clock=clock)
    store(cache, revision=b"rev-1", payload=SERVER, counter=7)
    with open(_path(root), "rb") as fh:
        data = fh.read()
    with open(_path(root), "wb") as fh:
        fh.write(_forge_seal(data, FORGED))
    clock.now = NOW + 60
    assert store(cache, revision=b"rev-1", payload=SERVER, counter=7) is True
