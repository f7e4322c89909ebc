"""The one way plugins talk to the user: a conversation object.

The PAM entry wraps pam_python's conversation; tests use
:class:`ScriptedConversation`; ``otpme-auth login`` uses a terminal one.
"""

from .errors import ConversationError


class Conversation:
    """Prompt, inform, or show an error.  Subclasses implement :meth:`_send`.

    ``silent`` is true when the application asked for no messages (PAM_SILENT):
    ``info`` and ``error`` then show nothing, so there is nothing to wait for.
    """

    silent = False

    def prompt(self, text, echo=False):
        """Ask ``text``; return the answer (``echo`` shows what is typed)."""
        return self._send("prompt_echo_on" if echo else "prompt_echo_off", text)

    def info(self, text):
        self._send("info", text)

    def error(self, text):
        self._send("error", text)

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
