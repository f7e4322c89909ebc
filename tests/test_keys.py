"""Keys between plugins: typed, owned by their producer, declared alike by consumers."""

import glob
import importlib
import os

import pytest

from otpme_auth import Key
from otpme_auth.context import Stash
from otpme_auth.testing import check_keys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _key_modules():
    names = ["otpme_auth.keys"]
    for path in sorted(glob.glob(os.path.join(ROOT, "plugins", "*", "otpme_auth_*", "keys.py"))):
        names.append("%s.keys" % os.path.basename(os.path.dirname(path)))
    return [importlib.import_module(n) for n in names]


def test_every_key_shared_between_plugins_is_declared_alike():
    modules = _key_modules()
    keys = check_keys(*modules)
    assert "offline.first" in keys and "login_answer" in keys
    # a key between two plugins is named after its producer; only protocol-level keys
    # live in the core and carry no plugin name
    core = vars(modules[0])
    assert not [k.name for k in core.values() if isinstance(k, Key) and "." in k.name]


def test_check_keys_finds_a_disagreement():
    import types
    producer = types.SimpleNamespace(__name__="producer", K=Key("p.k", "", list))
    consumer = types.SimpleNamespace(__name__="consumer", K=Key("p.k", "", dict))
    with pytest.raises(AssertionError, match="'p.k' is list in producer.K but dict in consumer.K"):
        check_keys(producer, consumer)


def test_stash_refuses_a_value_of_the_wrong_type():
    stash = Stash()
    key = Key("p.count", "a number", int)
    stash[key] = 3
    assert stash[Key("p.count", "the consumer's declaration", int)] == 3  # equal by name
    with pytest.raises(TypeError, match=r"ctx.stash\[p.count\] holds int, not str"):
        stash[key] = "3"
    stash[key] = None  # "nothing" is always allowed
    untyped = Key("p.any")
    stash[untyped] = object()
