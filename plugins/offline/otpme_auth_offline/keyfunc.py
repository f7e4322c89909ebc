"""The key function of the offline cache: options, parameters, and the derivation.

Two PAM options, written exactly as seed 000 writes them:

``offline_key_func=Argon2_i;min_mem:65536,max_mem:262144,iterations:3,threads:4``
    The function name, then ``;`` and comma-separated ``key:value`` pairs
    (``key=value`` is accepted too: the seed's synopsis writes ``opt=val``).
    Every key is optional, at most once, in any order.  Defaults: iterations 3,
    min_mem 65536 KiB, max_mem 262144 KiB, threads 4.  Only ``Argon2_i``.

``check_offline_pass_strength=POLICY;score:iterations,...``
    POLICY is ``auto`` (the host's policy as the server sends it) or a policy
    name; the table maps a strength score (0-10, each at most once) to the
    Argon2 iterations a cache keyed by such a password gets.  Without a table
    the seed's example table is used.

How the parameters of one cache are chosen (:func:`choose_params`):

* memory: 1/32 of the machine's RAM, rounded down to a whole MiB, clamped to
  ``[min_mem, max_mem]``.  So a 2 GiB machine uses min_mem (64 MiB), an
  8 GiB laptop 256 MiB, and a login never takes more than ~3 % of the RAM.
* iterations: from the strength table when ``check_offline_pass_strength``
  is given (a score missing from the table takes the entry of the nearest
  lower listed score, or the table's largest if none is lower: the unknown
  case gets the most work); otherwise ``iterations``.
* threads: ``threads`` (Argon2 lanes).

The parameters actually used are written into each cache's header, so a cache
always opens with its own parameters after the PAM line changes; the caller
re-encrypts with the new ones at the next successful login.

Nothing here imports argon2 or cryptography at module level: the login path
pays for them only when a key is derived.
"""

from otpme_auth.options import Option

FUNCTIONS = ("Argon2_i",)
DEFAULT_FUNCTION = "Argon2_i"

# Hard bounds, for the option and for headers read from disk (a header that
# asks for 100 GiB of memory is refused, not obeyed).
MAX_ITERATIONS = 64
MAX_THREADS = 64
MIN_MEM_KIB = 8            # Argon2's own floor is 8 KiB per lane
MAX_MEM_KIB = 4 * 1024 * 1024   # 4 GiB
KEY_LEN = 32
SALT_LEN = 16

_DEFAULTS = {"iterations": 3, "min_mem": 65536, "max_mem": 262144, "threads": 4}
_BOUNDS = {"iterations": (1, MAX_ITERATIONS), "min_mem": (MIN_MEM_KIB, MAX_MEM_KIB),
           "max_mem": (MIN_MEM_KIB, MAX_MEM_KIB), "threads": (1, MAX_THREADS)}

#: Seed 000's example table, used when the option gives a policy but no table.
SEED_STRENGTH_TABLE = {0: 6, 1: 6, 2: 6, 3: 5, 4: 5, 5: 5, 6: 3, 7: 3, 8: 3, 9: 3, 10: 3}
MAX_SCORE = 10
_POLICY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


class KdfParams:
    """The parameters of one derivation, as stored in a cache header."""

    __slots__ = ("name", "iterations", "memory_kib", "threads")

    def __init__(self, name, iterations, memory_kib, threads):
        if name not in FUNCTIONS:
            raise ValueError("key function %s is not supported" % _show(name))
        for what, value, low, high in (("iterations", iterations, 1, MAX_ITERATIONS),
                                       ("threads", threads, 1, MAX_THREADS),
                                       ("memory", memory_kib, MIN_MEM_KIB, MAX_MEM_KIB)):
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise ValueError("%s %r is out of range %d-%d" % (what, value, low, high))
        if memory_kib < 8 * threads:
            raise ValueError("memory %d KiB is below 8 KiB per thread (%d threads)"
                             % (memory_kib, threads))
        self.name = name
        self.iterations = iterations
        self.memory_kib = memory_kib
        self.threads = threads

    def _key(self):
        return (self.name, self.iterations, self.memory_kib, self.threads)

    def __eq__(self, other):
        return isinstance(other, KdfParams) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        return "<KdfParams %s t=%d m=%dKiB p=%d>" % self._key()


class KeyFunc:
    """The parsed ``offline_key_func`` option."""

    __slots__ = ("name", "iterations", "min_mem", "max_mem", "threads")

    def __init__(self, name=DEFAULT_FUNCTION, iterations=3, min_mem=65536, max_mem=262144,
                 threads=4):
        self.name = name
        self.iterations = iterations
        self.min_mem = min_mem
        self.max_mem = max_mem
        self.threads = threads

    def _key(self):
        return (self.name, self.iterations, self.min_mem, self.max_mem, self.threads)

    def __eq__(self, other):
        return isinstance(other, KeyFunc) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        return "<KeyFunc %s;min_mem:%d,max_mem:%d,iterations:%d,threads:%d>" % (
            self.name, self.min_mem, self.max_mem, self.iterations, self.threads)


class StrengthCheck:
    """The parsed ``check_offline_pass_strength`` option."""

    __slots__ = ("policy", "table")

    def __init__(self, policy, table):
        self.policy = policy          # "auto" or a policy name
        self.table = dict(table)      # score -> iterations

    def iterations_for(self, score):
        """Iterations for ``score`` (0-10); see the module docstring for missing scores."""
        lower = [s for s in self.table if s <= score]
        if lower:
            return self.table[max(lower)]
        return max(self.table.values())

    def __eq__(self, other):
        return isinstance(other, StrengthCheck) and (self.policy, self.table) == (
            other.policy, other.table)

    def __hash__(self):
        return hash((self.policy, tuple(sorted(self.table.items()))))

    def __repr__(self):
        return "<StrengthCheck %s;%s>" % (self.policy, ",".join(
            "%d:%d" % kv for kv in sorted(self.table.items())))


def _show(value, limit=40):
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 4] + "...'"


def _name(key):
    """A parameter's name for an error text: as is if it is a plain word, else quoted.

    The text goes to a log line; what the line gave must not break it in two.
    """
    return key if key and all(c.isalnum() or c == "_" for c in key) else _show(key)


def _number(key, value, low, high, what="option"):
    if not value or len(value) > 10 or not all(c in "0123456789" for c in value):
        raise ValueError("%s %s: %s is not a whole number" % (what, _name(key), _show(value)))
    number = int(value)
    if not low <= number <= high:
        raise ValueError("%s %s: %d is out of range %d-%d" % (what, _name(key), number, low, high))
    return number


def _pairs(text, what):
    """``a:1,b:2`` -> [("a", "1"), ("b", "2")]; ``=`` may stand for ``:``."""
    if not text:
        raise ValueError("nothing after ';' (give %s or drop the ';')" % what)
    pairs = []
    for item in text.split(","):
        if not item:
            raise ValueError("empty item in %s (two commas, or a comma at an end)" % what)
        key, sep, value = item.replace("=", ":", 1).partition(":")
        if not sep:
            raise ValueError("%s is not key:value" % _show(item))
        pairs.append((key, value))
    return pairs


def parse_key_func(text):
    """Parse ``offline_key_func``; raises ``ValueError`` naming the bad part."""
    if not isinstance(text, str):
        raise ValueError("must be text")
    name, semi, rest = text.partition(";")
    if name not in FUNCTIONS:
        raise ValueError("unknown key function %s (supported: %s)" % (_show(name), ", ".join(FUNCTIONS)))
    values = dict(_DEFAULTS)
    seen = set()
    for key, value in (_pairs(rest, "key:value options") if semi else ()):
        if key not in _DEFAULTS:
            raise ValueError("unknown option %s (known: iterations, min_mem, max_mem, threads)"
                             % _show(key))
        if key in seen:
            raise ValueError("option %s is given twice" % key)
        seen.add(key)
        values[key] = _number(key, value, *_BOUNDS[key])
    if values["min_mem"] > values["max_mem"]:
        raise ValueError("min_mem %d is above max_mem %d" % (values["min_mem"], values["max_mem"]))
    if values["min_mem"] < 8 * values["threads"]:
        raise ValueError("min_mem %d is below 8 KiB per thread (threads %d)"
                         % (values["min_mem"], values["threads"]))
    return KeyFunc(name, **values)


def parse_strength_check(text):
    """Parse ``check_offline_pass_strength``; raises ``ValueError`` naming the bad part."""
    if not isinstance(text, str):
        raise ValueError("must be text")
    policy, semi, rest = text.partition(";")
    if not policy:
        raise ValueError("no policy before ';' (give auto or a policy name)")
    if len(policy) > 64 or not all(c in _POLICY_CHARS for c in policy):
        raise ValueError("policy name %s may only hold letters, digits, '_', '-' and '.'"
                         % _show(policy))
    if not semi:
        return StrengthCheck(policy, SEED_STRENGTH_TABLE)
    table = {}
    for score, iterations in _pairs(rest, "score:iterations pairs"):
        number = _number(score, score, 0, MAX_SCORE, "score")
        if number in table:
            raise ValueError("score %d is given twice" % number)
        table[number] = _number(score, iterations, 1, MAX_ITERATIONS, "iterations for score")
    return StrengthCheck(policy, table)


DEFAULT_KEY_FUNC = KeyFunc()

#: The options, ready for ``otpme_auth_declare_options``.
OFFLINE_KEY_FUNC = Option(
    "offline_key_func", parse=parse_key_func, default=DEFAULT_KEY_FUNC, kind="Argon2_i;k:v,...",
    help="key function of the offline cache: Argon2_i;min_mem:KiB,max_mem:KiB,iterations:N,threads:N")
CHECK_OFFLINE_PASS_STRENGTH = Option(
    "check_offline_pass_strength", parse=parse_strength_check, default=None,
    kind="POLICY|auto;score:iterations,...",
    help="Argon2 iterations by password strength: POLICY|auto;score:iterations,... (scores 0-10)")
OPTIONS = (OFFLINE_KEY_FUNC, CHECK_OFFLINE_PASS_STRENGTH)


# --------------------------------------------------------------------------
# Choosing the parameters of one cache
# --------------------------------------------------------------------------

def total_ram_kib():
    """The machine's RAM in KiB (0 if unknown)."""
    import os
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 1024
    except (ValueError, OSError):
        return 0


def choose_memory(key_func, ram_kib=None):
    """RAM/32 rounded down to a whole MiB, clamped to [min_mem, max_mem] (KiB)."""
    if ram_kib is None:
        ram_kib = total_ram_kib()
    wanted = (ram_kib // 32) // 1024 * 1024
    return max(key_func.min_mem, min(key_func.max_mem, wanted))


def choose_params(key_func, strength_check=None, score=None, ram_kib=None):
    """The :class:`KdfParams` for a new cache.

    :param key_func: the parsed ``offline_key_func`` (:class:`KeyFunc`).
    :param strength_check: the parsed ``check_offline_pass_strength`` or None.
    :param score: the password's strength score (0-10); needed with a strength check.
    """
    iterations = key_func.iterations
    if strength_check is not None:
        if score is None:
            raise ValueError("a strength check needs the password's score")
        iterations = strength_check.iterations_for(score)
    return KdfParams(key_func.name, iterations, choose_memory(key_func, ram_kib), key_func.threads)


def derive_key(secret, salt, params):
    """32 bytes from Argon2i over ``secret`` (bytes) and ``salt`` with ``params``."""
    from argon2.low_level import Type, hash_secret_raw  # lazy: only when a key is derived
    if params.name != "Argon2_i":
        raise ValueError("key function %s is not supported" % _show(params.name))
    return hash_secret_raw(secret, salt, time_cost=params.iterations,
                           memory_cost=params.memory_kib, parallelism=params.threads,
                           hash_len=KEY_LEN, type=Type.I)
