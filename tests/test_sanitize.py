"""Every text shown to the user is sanitised in one place: the conversation layer."""

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from otpme_auth.conversation import MAX_TEXT, ScriptedConversation, sanitize

BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
EVIL = "\x1b]0;PWNED\x07\x1b[2J"


def harmless(text, multiline=True):
    """True if a terminal shows ``text`` as the characters it holds, and nothing else."""
    for ch in text:
        if ch in "\n\t" and multiline:
            continue
        category = unicodedata.category(ch)
        if category in ("Cc", "Cs") or ch in BIDI or ch in "\u2028\u2029":
            return False
    return True


printable = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"),
                                  blacklist_characters=BIDI), max_size=200)
sequences = st.sampled_from([
    "\x1b[2J", "\x1b[31;1m", "\x1b]0;PWNED\x07", "\x1b]8;;http://evil\x1b\\", "\x1bPq#0\x1b\\",
    "\x9b2J", "\x9d0;t\x9c", "\x1bc", "\x1b(B", "\x1b7", "\x07", "\x08", "\x00", "\x7f", "\x85",
    "\r", "\u202e", "\u2066", "\u200f", "\ud800",
])


@settings(max_examples=300)
@given(st.text(max_size=300), st.booleans())
def test_output_is_always_harmless_and_stable(text, multiline):
    clean = sanitize(text, multiline=multiline)
    assert harmless(clean, multiline)
    assert "\x1b" not in clean and "\x07" not in clean
    assert len(clean) <= MAX_TEXT
    assert sanitize(clean, multiline=multiline) == clean


@settings(max_examples=300)
@given(printable)
def test_printable_unicode_is_kept(text):
    assert sanitize(text) == text
    assert sanitize(text, multiline=False) == text.replace("\n", " ").replace("\t", " ")


@settings(max_examples=300)
@given(printable, st.lists(sequences, min_size=1, max_size=5), printable)
def test_escape_sequences_are_removed_whole(before, inserted, after):
    # Followed by printable text, a sequence leaves nothing of itself behind
    # (an unterminated OSC string may take what follows; it never shows it raw).
    clean = sanitize(before + "".join(inserted) + "|" + after)
    assert clean.startswith(before)
    assert harmless(clean)
    for seq in inserted:
        if seq.startswith(("\x1b]", "\x9d", "\x1bP")):
            assert "PWNED" not in clean and "evil" not in clean


def test_the_issue_example_and_friends():
    assert sanitize(EVIL + "Password: ") == "Password: "
    assert sanitize("a\u202etxt.exe") == "atxt.exe"
    assert sanitize("line1\r\nline2\rX") == "line1\nline2X"
    assert sanitize("two\nlines", multiline=False) == "two lines"
    assert sanitize("Grüße, 日本, 👍") == "Grüße, 日本, 👍"
    assert sanitize(None) == ""


def test_every_conversation_call_is_sanitised():
    conv = ScriptedConversation(["pw", "name"])
    conv.prompt(EVIL + "Password: ")
    conv.prompt("Challenge: 1234\nName: " + EVIL, echo=True)
    conv.info("Welcome" + EVIL)
    conv.error("\x9b2JNo\u202e")
    assert conv.transcript == [("prompt_echo_off", "Password: "), ("prompt_echo_on", "Challenge: 1234\nName: "),
                               ("info", "Welcome"), ("error", "No")]


# The regular expression the scanner replaced (``re`` is kept off the login path:
# docs/performance.md); the scanner must remove exactly what it removed.
_REFERENCE = __import__("re").compile(
    r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[\x20-\x2f]*[\x30-\x7e]?")
_ALPHABET = st.sampled_from(list("\x1b\x9b\x90\x98\x9d\x9e\x9f\x9c\x07\\[]PX^_ (/09;?@AZz~a\n")
                            + ["é", "\x7f"])


@settings(max_examples=1000)
@given(st.one_of(st.text(max_size=60), st.lists(_ALPHABET, max_size=40).map("".join)))
def test_sequence_scanner_removes_what_the_ecma48_pattern_removes(text):
    from otpme_auth.conversation import _strip_sequences
    assert _strip_sequences(text) == _REFERENCE.sub("", text)
