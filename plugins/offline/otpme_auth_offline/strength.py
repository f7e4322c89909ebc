"""Password strength: a deterministic score from 0 (guessed at once) to 10 (strong).

Used by ``check_offline_pass_strength`` to give weak passwords more Argon2
iterations.  No network, no dictionary files: a small built-in list.

The score, step by step (only the first 1024 characters count):

1. **Common passwords**: if the password, lower-cased, is on the built-in list
   of the most used passwords, or is after undoing leet-speak (``P@ssw0rd``)
   and/or dropping up to four trailing digits or symbols (``Password1!``),
   the score is **0**.
2. **Bits**: every character adds ``weight * log2(pool)`` bits, where pool is
   the size of the character classes the password uses (lower 26, upper 26,
   digits 10, ASCII symbols and space 33, anything else 100).  The weight is
   1, or less when the character is predictable from the ones before it:

   ============================================  ======
   the same as the one before (2nd of a run)     0.2
   3rd or later of a run (``aaa``)               0
   3rd or later of a +-1 sequence (``abc``, ``321``)   0.1
   3rd or later of a keyboard walk (``qwe``, ``asdf``) 0.2
   3rd or later letter of a common word's prefix (``pass...``)   0.15
   ends a 4-character chunk seen before (``abcdabcd``)  0
   ============================================  ======

   The weight of a character depends only on the characters before it, so
   appending never lowers the bits.
3. **Score** = bits // 10, at most 10: 8 random lower-case letters (37 bits)
   score 3, 12 random characters of all four classes (78 bits) score 7, 16 of
   them (105 bits) score 10.
4. **Policy**: a password shorter than the policy's ``min_length`` (default
   8) scores at most 3.

Stated properties (tested with hypothesis): never raises, always an int in
0..10, deterministic; appending characters never lowers the score unless the
result is a common password (score 0); a password longer than
:data:`CAP_REACH` characters can never hit step 1, so appending to it never
lowers the score.
"""

# ~190 of the most used passwords of the public leak compilations (lower case).
COMMON = frozenset("""
123456 password 12345678 qwerty 123456789 12345 1234 111111 1234567 dragon 123123 baseball
abc123 football monkey letmein 696969 shadow master 666666 qwertyuiop 123321 mustang
1234567890 michael 654321 superman 1qaz2wsx 7777777 121212 000000 qazwsx 123qwe killer
trustno1 jordan jennifer zxcvbnm asdfgh hunter buster soccer harley batman andrew tigger
sunshine iloveyou 2000 charlie robert thomas hockey ranger daniel starwars klaster 112233
george computer michelle jessica pepper 1111 zxcvbn 555555 11111111 131313 freedom 777777
pass maggie 159753 aaaaaa ginger princess joshua cheese amanda summer love ashley 6969
nicole chelsea biteme matthew access yankees 987654321 dallas austin thunder taylor matrix
welcome admin login passw0rd hello secret root toor changeme default guest test test123
qwerty123 password1 password123 admin123 welcome1 letmein1 abcdef abcd1234 1q2w3e4r
1q2w3e4r5t qwer1234 asdf1234 asdfghjkl azerty qwertz 1qazxsw2 zaq12wsx q1w2e3r4 samsung
pokemon whatever flower hannah purple diamond liverpool arsenal chocolate butterfly
anthony jasmine justin loveme 123abc 11111 00000 987654 dragon1 monkey1 secret1 orange
banana apple lovely angel angels friends family forever blink182 qwerty1 naruto
google internet service server linux ubuntu debian windows computer1 mypassword
iloveyou1 princess1 football1 baseball1 superman1 michael1 charlie1 sunshine1 shadow1
master1 hello123 welcome123 p@ssw0rd passwort motdepasse contrasena senha parola
""".split())

_WORD_PREFIXES = None
CAP_REACH = max(len(w) for w in COMMON) + 4
LIMIT = 1024
_LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g",
         "@": "a", "$": "s", "!": "i", "|": "l", "+": "t"}
_ROWS = ("1234567890-=", "qwertyuiop[]", "asdfghjkl;'", "zxcvbnm,./")
_KEYPOS = {c: (r, i) for r, row in enumerate(_ROWS) for i, c in enumerate(row)}
_SYMBOLS = frozenset(" !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


def _prefixes():
    """Prefixes (3+ letters) of the alphabetic common passwords, built once."""
    global _WORD_PREFIXES
    if _WORD_PREFIXES is None:
        found = set()
        for word in COMMON:
            plain = "".join(_LEET.get(c, c) for c in word)
            if plain.isalpha() and len(plain) >= 4:
                for n in range(3, len(plain) + 1):
                    found.add(plain[:n])
        _WORD_PREFIXES = frozenset(found)
    return _WORD_PREFIXES


def is_common(password):
    """True if ``password`` is, or trivially derives from, a built-in common password."""
    low = password.lower()
    if len(low) > CAP_REACH:
        return False
    candidates = {low, "".join(_LEET.get(c, c) for c in low)}
    for text in list(candidates):
        stripped = text
        for _ in range(4):
            if stripped and (stripped[-1].isdigit() or stripped[-1] in _SYMBOLS):
                stripped = stripped[:-1]
                candidates.add(stripped)
    for text in list(candidates):
        candidates.add("".join(_LEET.get(c, c) for c in text))
    return any(c in COMMON for c in candidates)


def _pool(password):
    lower = upper = digit = symbol = other = False
    for c in password:
        if "a" <= c <= "z":
            lower = True
        elif "A" <= c <= "Z":
            upper = True
        elif "0" <= c <= "9":
            digit = True
        elif c in _SYMBOLS:
            symbol = True
        else:
            other = True
    return 26 * lower + 26 * upper + 10 * digit + 33 * symbol + 100 * other


def _fold(c):
    low = c.lower()
    low = low if len(low) == 1 else c
    return _LEET.get(low, low)


def _adjacent(a, b):
    pa, pb = _KEYPOS.get(a.lower()), _KEYPOS.get(b.lower())
    if pa is None or pb is None or a.lower() == b.lower():
        return False
    return abs(pa[0] - pb[0]) <= 1 and abs(pa[1] - pb[1]) <= 1


def _weights(password):
    """Per-character weights; each depends only on the characters before it."""
    prefixes = _prefixes()
    weights = []
    seen4 = set()
    word_starts = []   # start indexes whose text so far is a common-word prefix
    # Per character (not str.lower() of the whole: final-sigma rules look ahead).
    norm = "".join(_fold(c) for c in password)
    for i, c in enumerate(password):
        w = 1.0
        if i >= 1 and c == password[i - 1]:
            w = 0.0 if i >= 2 and password[i - 2] == c else 0.2
        if i >= 2:
            d1 = ord(password[i - 1]) - ord(password[i - 2])
            d2 = ord(c) - ord(password[i - 1])
            if d1 == d2 and d2 in (1, -1):
                w = min(w, 0.1)
            if _adjacent(password[i - 2], password[i - 1]) and _adjacent(password[i - 1], c):
                w = min(w, 0.2)
        # Common-word prefixes: starts that are still a prefix after this char.
        word_starts = [s for s in word_starts + [i] if i - s + 1 < 3
                       or norm[s:i + 1] in prefixes]
        if any(i - s + 1 >= 3 for s in word_starts):
            w = min(w, 0.15)
        if i >= 3:
            chunk = password[i - 3:i + 1]
            if chunk in seen4:
                w = 0.0
            seen4.add(chunk)
        weights.append(w)
    return weights


def entropy_bits(password):
    """The estimated bits of steps 2 (see the module docstring)."""
    import math
    password = password[:LIMIT]
    pool = _pool(password)
    if not pool:
        return 0.0
    return sum(_weights(password)) * math.log2(pool)


def score(password, min_length=8):
    """The strength score 0-10 of ``password`` (text); never raises for text."""
    if not isinstance(password, str):
        raise TypeError("score() takes text")
    password = password[:LIMIT]
    if not password or is_common(password):
        return 0
    result = min(10, int(entropy_bits(password) // 10))
    if len(password) < min_length:
        result = min(result, 3)
    return result


class Policy:
    """A password-strength policy (``password_strength`` type, as the server sends it).

    Only ``min_length`` changes the score here; ``min_score`` is what the
    caller may require before caching; dictionaries other than the built-in
    ``common-passwords`` are not available offline and are ignored.
    """

    __slots__ = ("name", "min_length", "min_score")

    def __init__(self, name="password_strength", min_length=8, min_score=0):
        self.name = name
        self.min_length = min_length
        self.min_score = min_score

    @classmethod
    def from_server(cls, data):
        """Build from the server's ``password_policy`` dict (None: the default policy)."""
        if not isinstance(data, dict):
            return cls()

        def number(key, default, high):
            value = data.get(key, default)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= high:
                return default
            return value
        name = data.get("name") if isinstance(data.get("name"), str) else "password_strength"
        return cls(name[:64], number("min_length", 8, 1024), number("min_score", 0, 10))

    def score(self, password):
        return score(password, self.min_length)

    def acceptable(self, password_score):
        return password_score >= self.min_score

    def __repr__(self):
        return "<Policy %s min_length=%d min_score=%d>" % (self.name, self.min_length,
                                                          self.min_score)
