"""The one way plugins talk to the user: a conversation object.

The PAM entry wraps pam_python's conversation; tests use
:class:`ScriptedConversation`; ``otpme-auth login`` uses a terminal one.

Every text shown goes through :func:`sanitize` here, in the base class, before
any subclass sees it: prompts, greetings, errors and notices often come from a
server (or another outside source), and a terminal obeys escape sequences
(``\x1b]0;TITLE\x07`` retitles the window, ``\x1b[2J`` clears it, a bidi
override reorders what the user reads).  No plugin needs to, or can forget to,
filter its own text.
"""

from .errors import ConversationError

#: Whole escape sequences, removed whole so their parameters never show:
#: CSI (ESC [ or 0x9B, parameter bytes 0x30-0x3F, intermediates 0x20-0x2F, a
#: final byte 0x40-0x7E), OSC / DCS / SOS / PM / APC strings (ESC ] P X ^ _ or
#: their C1 forms, up to BEL, ST or the end), and two-byte ESC sequences
#: (intermediates, then a final byte 0x30-0x7E).  A hand-written scanner: ``re``
#: (with ``enum`` and ``functools``) costs several milliseconds of import on
#: every login (docs/performance.md).
_STRING_STARTS = frozenset("]PX^_")
_STRING_C1 = frozenset("\x90\x98\x9d\x9e\x9f")
_STRING_ENDS = frozenset("\x07\x1b\x9c")
_INTRODUCERS = _STRING_C1 | {"\x1b", "\x9b"}


def _skip_range(text, j, low, high):
    n = len(text)
    while j < n and low <= text[j] <= high:
        j += 1
    return j


def _strip_sequences(text):
    if not any(ch in _INTRODUCERS for ch in text):
        return text
    out = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        nxt = text[i + 1] if i + 1 < n else ""
        if ch == "\x9b" or (ch == "\x1b" and nxt == "["):
            j = _skip_range(text, i + (1 if ch == "\x9b" else 2), "\x30", "\x3f")
            j = _skip_range(text, j, "\x20", "\x2f")
            if j < n and "\x40" <= text[j] <= "\x7e":
                j += 1
        elif ch in _STRING_C1 or (ch == "\x1b" and nxt in _STRING_STARTS):
            j = i + (1 if ch in _STRING_C1 else 2)
            while j < n and text[j] not in _STRING_ENDS:
                j += 1
            if j < n and text[j] in "\x07\x9c":
                j += 1
            elif text.startswith("\x1b\\", j):
                j += 2
        elif ch == "\x1b":
            j = _skip_range(text, i + 1, "\x20", "\x2f")
            if j < n and "\x30" <= text[j] <= "\x7e":
                j += 1
        else:
            out.append(ch)
            j = i + 1
        i = j
    return "".join(out)


#: Bidirectional-text controls (embeddings, overrides, isolates, marks).
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                  "\u2066\u2067\u2068\u2069")
#: Shown as is (with ``multiline``); else a line break becomes a space.
_LINE = frozenset("\n\t")
MAX_TEXT = 4096


def sanitize(text, multiline=True):
    """``text`` with every control character and escape sequence removed.

    Removed: whole ANSI/ECMA-48 escape sequences (CSI, OSC, DCS, ... and their
    C1 forms), every other C0/C1 control and DEL, bidi overrides, embeddings,
    isolates and marks, and lone surrogates.  Kept: printable Unicode, and
    with ``multiline`` tabs and line breaks (U+2028/U+2029 and CR LF become
    ``\n``; CR alone is dropped: it would let a line overwrite itself); without
    it those become one space.  ``None`` is ``""``; another non-string its ``str()``.
    At most :data:`MAX_TEXT` characters are kept.
    """
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    text = text[:MAX_TEXT * 2].replace("\r\n", "\n").replace("\u2028", "\n").replace(
        "\u2029", "\n")
    text = _strip_sequences(text)
    out = []
    for ch in text:
        code = ord(ch)
        if ch in _LINE:
            out.append(ch if multiline else " ")
        elif code < 0x20 or 0x7f <= code < 0xa0 or ch in _BIDI or 0xd800 <= code < 0xe000:
            continue
        else:
            out.append(ch)
    return "".join(out)[:MAX_TEXT]


class Conversation:
    """Prompt, inform, or show an error.  Subclasses implement :meth:`_send`.

    ``silent`` is true when the application asked for no messages (PAM_SILENT):
    ``info`` and ``error`` then show nothing, so there is nothing to wait for.
    """

    silent = False

    def prompt(self, text, echo=False):
        """Ask ``text``; return the answer (``echo`` shows what is typed)."""
        # Line breaks stay: a prompt may be a challenge and a question (pam_ocra's cmsg/rmsg).
        return self._send("prompt_echo_on" if echo else "prompt_echo_off", sanitize(text))

    def info(self, text):
        self._send("info", sanitize(text))

    def error(self, text):
        self._send("error", sanitize(text))

    def _send(self, style, text):
        raise NotImplementedError


class PamConversation(Conversation):
    """pam_python's ``pamh.conversation`` (styles map to PAM_PROMPT_ECHO_OFF etc.)."""

    _STYLES = {
        "prompt_echo_off": "PAM_PROMPT_ECHO_OFF",
        "prompt_echo_on": "PAM_PROMPT_ECHO_ON",
        "info": "PAM_TEXT_INFO",
        "error": "PAM_ERROR_MSG",
    }

    def __init__(self, pamh):
        self.pamh = pamh

    def _send(self, style, text):
        pamh = self.pamh
        try:
            reply = pamh.conversation(pamh.Message(getattr(pamh, self._STYLES[style]), text))
        except pamh.exception as exc:
            raise ConversationError("the application's conversation failed (PAM code %s)"
                                    % getattr(exc, "pam_result", "?")) from None
        return reply.resp if style.startswith("prompt") else None


class ScriptedConversation(Conversation):
    """Answers prompts from a list and records everything (for tests).

    ``answers`` are returned in order; running out is a :class:`ConversationError`
    (as when a real application cannot prompt).  ``transcript`` holds
    ``(style, text)`` tuples.
    """

    def __init__(self, answers=()):
        self.answers = list(answers)
        self.transcript = []

    def _send(self, style, text):
        self.transcript.append((style, text))
        if not style.startswith("prompt"):
            return None
        if not self.answers:
            raise ConversationError("no scripted answer left for prompt %r" % text)
        return self.answers.pop(0)

    @property
    def prompts(self):
        return [text for style, text in self.transcript if style.startswith("prompt")]

    @property
    def shown(self):
        return [text for style, text in self.transcript if not style.startswith("prompt")]


class TerminalConversation(Conversation):
    """For ``otpme-auth login``: prompts on the terminal, echo off for secrets."""

    def _send(self, style, text):
        import sys
        if style == "prompt_echo_off":
            import getpass
            try:
                return getpass.getpass(text)
            except EOFError:
                return None
        if style == "prompt_echo_on":
            sys.stderr.write(text)
            sys.stderr.flush()
            line = sys.stdin.readline()
            return line.rstrip("\n") if line else None
        sys.stderr.write(text + "\n")
        return None
