"""offline_key_func and check_offline_pass_strength: parsing, choosing, deriving."""

import itertools

import pytest

from otpme_auth.errors import ConfigError
from otpme_auth.options import Token, _parse_value
from otpme_auth_offline import keyfunc
from otpme_auth_offline.keyfunc import (
    CHECK_OFFLINE_PASS_STRENGTH, DEFAULT_KEY_FUNC, OFFLINE_KEY_FUNC, SEED_STRENGTH_TABLE,
    KdfParams, KeyFunc, StrengthCheck, choose_memory, choose_params, derive_key, parse_key_func,
    parse_strength_check)

SEED_KEY_FUNC = "Argon2_i;min_mem:65536,max_mem:262144,iterations:6,threads:4"
SEED_STRENGTH = "password_strength;0:6,1:6,2:6,3:5,4:5,5:5,6:3,7:3,8:3,9:3,10:3"
GiB = 1024 * 1024


def test_seed_line_parses_exactly():
    assert parse_key_func(SEED_KEY_FUNC) == KeyFunc("Argon2_i", 6, 65536, 262144, 4)
    check = parse_strength_check(SEED_STRENGTH)
    assert check.policy == "password_strength" and check.table == SEED_STRENGTH_TABLE


def test_defaults():
    assert parse_key_func("Argon2_i") == DEFAULT_KEY_FUNC == KeyFunc("Argon2_i", 3, 65536, 262144, 4)
    assert OFFLINE_KEY_FUNC.default == DEFAULT_KEY_FUNC
    assert CHECK_OFFLINE_PASS_STRENGTH.default is None
    assert parse_strength_check("auto") == StrengthCheck("auto", SEED_STRENGTH_TABLE)


def test_option_order_does_not_change_the_outcome():
    items = ["min_mem:32768", "max_mem:131072", "iterations:5", "threads:2"]
    results = {parse_key_func("Argon2_i;" + ",".join(p)) for p in itertools.permutations(items)}
    assert results == {KeyFunc("Argon2_i", 5, 32768, 131072, 2)}
    pairs = ["0:9", "5:4", "10:2"]
    results = {parse_strength_check("auto;" + ",".join(p)) for p in itertools.permutations(pairs)}
    assert len(results) == 1


def test_equals_sign_is_accepted_for_the_synopsis_form():
    assert parse_key_func("Argon2_i;iterations=4,threads=2") == KeyFunc("Argon2_i", 4, threads=2)


@pytest.mark.parametrize("text, message", [
    ("", "unknown key function ''"),
    ("argon2_i", "unknown key function 'argon2_i'"),
    ("Argon2_id;iterations:3", "unknown key function 'Argon2_id'"),
    ("Argon2_i;", "nothing after ';'"),
    ("Argon2_i;iterations:3,", "empty item"),
    ("Argon2_i;iterations:3,,threads:2", "empty item"),
    ("Argon2_i;iterations", "'iterations' is not key:value"),
    ("Argon2_i;memory:65536", "unknown option 'memory'"),
    ("Argon2_i;iterations:3,iterations:4", "iterations is given twice"),
    ("Argon2_i;iterations:x", "option iterations: 'x' is not a whole number"),
    ("Argon2_i;iterations:-1", "not a whole number"),
    ("Argon2_i;iterations:0", "iterations: 0 is out of range 1-64"),
    ("Argon2_i;threads:65", "threads: 65 is out of range"),
    ("Argon2_i;max_mem:99999999999", "not a whole number"),
    ("Argon2_i;max_mem:9999999", "max_mem: 9999999 is out of range"),
    ("Argon2_i;min_mem:4", "min_mem: 4 is out of range"),
    ("Argon2_i;max_mem:32768", "min_mem 65536 is above max_mem 32768"),
    ("Argon2_i;min_mem:16,threads:4", "min_mem 16 is below 8 KiB per thread"),
])
def test_bad_key_func(text, message):
    with pytest.raises(ValueError) as exc:
        parse_key_func(text)
    assert message in str(exc.value)


@pytest.mark.parametrize("text, message", [
    ("", "no policy"),
    (";0:3", "no policy"),
    ("pol icy;0:3", "policy name 'pol icy'"),
    ("auto;", "nothing after ';'"),
    ("auto;0:3,", "empty item"),
    ("auto;0", "'0' is not key:value"),
    ("auto;11:3", "score 11: 11 is out of range 0-10"),
    ("auto;a:3", "'a' is not a whole number"),
    ("auto;1:3,1:4", "score 1 is given twice"),
    ("auto;01:3,1:4", "score 1 is given twice"),
    ("auto;1:0", "iterations for score 1: 0 is out of range 1-64"),
    ("auto;1:65", "out of range"),
])
def test_bad_strength_check(text, message):
    with pytest.raises(ValueError) as exc:
        parse_strength_check(text)
    assert message in str(exc.value)


def test_the_host_reports_a_bad_value_as_a_config_error_naming_the_option():
    with pytest.raises(ConfigError, match="bad value for offline_key_func: unknown option 'mem'"):
        _parse_value(OFFLINE_KEY_FUNC, Token("offline_key_func=Argon2_i;mem:1", 1))
    assert _parse_value(CHECK_OFFLINE_PASS_STRENGTH, Token("check_offline_pass_strength=" + SEED_STRENGTH, 1)) \
        == parse_strength_check(SEED_STRENGTH)


@pytest.mark.parametrize("ram, expected", [
    (0, 65536),                 # unknown RAM: the minimum
    (1 * GiB, 65536),           # 32 MiB wanted, raised to min_mem
    (2 * GiB, 65536),
    (4 * GiB, 131072),
    (6 * GiB + 12345, 196608),  # rounded down to a whole MiB
    (8 * GiB, 262144),
    (64 * GiB, 262144),         # capped at max_mem
])
def test_memory_is_ram_over_32_clamped(ram, expected):
    assert choose_memory(DEFAULT_KEY_FUNC, ram) == expected


def test_memory_fixed_when_min_equals_max():
    kf = parse_key_func("Argon2_i;min_mem:100000,max_mem:100000")
    assert choose_memory(kf, 64 * GiB) == choose_memory(kf, 0) == 100000


def test_iterations_from_the_strength_table():
    check = parse_strength_check(SEED_STRENGTH)
    assert [check.iterations_for(s) for s in range(11)] == [6, 6, 6, 5, 5, 5, 3, 3, 3, 3, 3]
    sparse = parse_strength_check("auto;3:5,8:2")
    # Missing scores take the nearest lower entry; below every entry, the largest.
    assert [sparse.iterations_for(s) for s in range(11)] == [5, 5, 5, 5, 5, 5, 5, 5, 2, 2, 2]
    kf = parse_key_func(SEED_KEY_FUNC)
    assert choose_params(kf, check, 0, 8 * GiB) == KdfParams("Argon2_i", 6, 262144, 4)
    assert choose_params(kf, check, 9, 8 * GiB) == KdfParams("Argon2_i", 3, 262144, 4)
    assert choose_params(kf, None, None, 2 * GiB) == KdfParams("Argon2_i", 6, 65536, 4)
    with pytest.raises(ValueError, match="needs the password's score"):
        choose_params(kf, check)


def test_kdf_params_validate():
    with pytest.raises(ValueError, match="not supported"):
        KdfParams("scrypt", 1, 8, 1)
    with pytest.raises(ValueError, match="iterations 0"):
        KdfParams("Argon2_i", 0, 8, 1)
    with pytest.raises(ValueError, match="below 8 KiB per thread"):
        KdfParams("Argon2_i", 1, 8, 2)
    assert repr(KdfParams("Argon2_i", 1, 8, 1)) == "<KdfParams Argon2_i t=1 m=8KiB p=1>"


def test_derive_key_is_argon2i_raw():
    from argon2.low_level import Type, hash_secret_raw
    params = KdfParams("Argon2_i", 2, 64, 2)
    key = derive_key(b"secret", b"s" * 16, params)
    assert len(key) == 32
    assert key == hash_secret_raw(b"secret", b"s" * 16, time_cost=2, memory_cost=64,
                                  parallelism=2, hash_len=32, type=Type.I)
    assert key != derive_key(b"secret", b"t" * 16, params)
    assert key != derive_key(b"secret", b"s" * 16, KdfParams("Argon2_i", 3, 64, 2))


def test_modules_do_not_import_heavy_things_at_import_time():
    import os
    import subprocess
    import sys

    import otpme_auth
    import otpme_auth_offline
    paths = [os.path.dirname(os.path.dirname(m.__file__)) for m in (otpme_auth, otpme_auth_offline)]
    code = ("import sys, otpme_auth_offline.keyfunc, otpme_auth_offline.strength, "
            "otpme_auth_offline.cache\n"
            "bad = [m for m in ('argon2', 'cryptography', 'json', 'typing', 'logging', "
            "'dataclasses', 'hashlib') if m in sys.modules]\n"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": ":".join(paths)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
    assert keyfunc.__doc__
