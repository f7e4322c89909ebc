"""Per-login state: one :class:`LoginContext`, typed keys, and secrets that never show.

Plugins keep what they learn during a login in ``ctx.stash[key]`` and what the
user typed in ``ctx.credentials[key]``, with :class:`Key` objects they define
(the protocol-level ones are in :mod:`otpme_auth.keys`), never in module globals
or the environment: a PAM process may run many logins.
"""

from .errors import ConversationError, CredentialUnavailable


class Key:
    """A typed key for ``ctx.stash`` and ``ctx.credentials`` (pytest's ``StashKey``).

    A key lives with the plugin that writes it, named ``"<producer>.<what>"``.
    Plugins never import each other, so a consumer declares the same key (same name,
    same type) in its own module: keys are equal when their names are, and
    ``ctx.stash`` refuses a value that is not of the key's ``type``, so a producer
    and a consumer that disagree fail loudly instead of passing the wrong thing.
    The kit's ``check_keys`` test helper compares the declarations across plugins.
    """

    __slots__ = ("name", "doc", "type")

    def __init__(self, name, doc="", type=object):
        self.name = name
        self.doc = doc
        self.type = type

    def __eq__(self, other):
        return isinstance(other, Key) and other.name == self.name

    def __hash__(self):
        return hash(("otpme_auth.Key", self.name))

    def __repr__(self):
        return "<Key %s>" % self.name


class Stash(dict):
    """``ctx.stash``: a dict whose :class:`Key` entries must hold the key's type."""

    __slots__ = ()

    def __setitem__(self, key, value):
        if isinstance(key, Key) and value is not None and not isinstance(value, key.type):
            raise TypeError("ctx.stash[%s] holds %s, not %s" % (
                key.name, getattr(key.type, "__name__", key.type), type(value).__name__))
        super().__setitem__(key, value)

    def setdefault(self, key, default=None):
        if key not in self:
            self[key] = default
        return self[key]


class Secret:
    """A credential value.  Its repr and str never show it; ``reveal()`` does.

    There is no ``==``: compare with :meth:`matches`, which is constant-time.
    """

    __slots__ = ("_value", "source")

    def __init__(self, value, source="prompt"):
        if not isinstance(value, str):
            raise TypeError("Secret holds text")
        self._value = value
        self.source = source  # "prompt", "stack" (PAM_AUTHTOK), "plugin"

    def reveal(self):
        return self._value

    def matches(self, other):
        from .otp._hmac import compare_digest  # not hmac's: that loads OpenSSL
        other = other.reveal() if isinstance(other, Secret) else other
        return compare_digest(self._value.encode(), other.encode())

    def __len__(self):
        return len(self._value)

    def __bool__(self):
        return bool(self._value)

    def __repr__(self):
        return "<Secret from %s>" % self.source

    __str__ = __repr__

    def __eq__(self, other):
        raise TypeError("compare secrets with Secret.matches() (constant time)")

    __hash__ = None

    def __reduce__(self):
        raise TypeError("secrets are not serialisable")


#: Linux-PAM's flag: refuse empty passwords whatever the module's options say.
PAM_DISALLOW_NULL_AUTHTOK = 0x1

# The credential that is shared with the PAM stack as PAM_AUTHTOK.
PASSWORD = Key("password", "what the user typed at the password prompt")
ONE_TIME_CODE = Key("one_time_code", "a one-time code typed at its own prompt")


class PamItems:
    """What the host reads from and writes to the PAM handle (test double: itself)."""

    def __init__(self, authtok=None, rhost=None, ruser=None, tty=None, xdisplay=None):
        self.authtok = authtok
        self.rhost = rhost
        self.ruser = ruser
        self.tty = tty
        self.xdisplay = xdisplay
        self.env = {}               # the PAM environment (pam_getenv / pam_putenv)

    def set_authtok(self, value):
        self.authtok = value

    def getenv(self, name):
        """The PAM environment's ``name`` (pam_getenv), or None."""
        return self.env.get(name)

    def putenv(self, name, value):
        """Set ``name`` in the PAM environment (pam_putenv); ``None`` removes it."""
        if value is None:
            self.env.pop(name, None)
        else:
            self.env[name] = value


class LoginContext:
    """Everything one PAM call knows: who, where, how, and what plugins found.

    Plugins read: ``user``, ``service``, ``rhost``, ``tty``, ``core`` (the
    core options), ``conversation``, ``log``; after verify: ``verified_by``
    and ``offline``.  They write: ``credentials``, ``stash``, ``messages``.
    """

    def __init__(self, user, service, core, conversation, log, pam=None, function="authenticate",
                 flags=0):
        self.user = user
        self.service = service
        self.function = function
        self.flags = flags          # the PAM flags of this call (PAM_SILENT, PAM_DISALLOW_NULL_AUTHTOK)
        self.core = core
        self.conversation = conversation
        self.log = log
        self.pam = pam if pam is not None else PamItems()
        self.rhost = self.pam.rhost
        self.tty = self.pam.tty
        self.xdisplay = getattr(self.pam, "xdisplay", None)
        self.credentials = {}
        self.stash = Stash()
        self.messages = []          # user-facing texts plugins want shown (show_errors)
        self.verified_by = ()       # plugin names whose ALLOW made the login
        self.offline = False        # True when a fallback (offline) verifier allowed it
        self.decisions = []         # every verifier's Decision, for post-login / login_failed
        self.first_pass_allowed = True   # False in the try_first_pass retry round
        self._authtok_key = None
        self._share_authtok = None  # Secret to set as PAM_AUTHTOK for the next module
        self._cleanups = []         # (function, plugin) run when this PAM call ends

    @property
    def graphical(self):
        """True when the application is a graphical greeter or locker (docs/hooks.md).

        The rule: PAM_XDISPLAY is set, or PAM_TTY is an X display such as ``:0``
        (gdm, lightdm, xscreensaver set one of them).  Such an application shows a
        message in a dialog that the next step replaces, so a message must be kept
        on screen for ``message_timeout``; a terminal application (sshd, sudo, su,
        login) keeps it in the scrollback, and waiting there only slows the login.
        """
        return bool(self.xdisplay) or (isinstance(self.tty, str) and self.tty.startswith(":"))

    # -- per-call cleanup -------------------------------------------------

    def add_cleanup(self, function, plugin=None):
        """Run ``function()`` when this PAM call ends, whatever happens in between.

        For a resource a plugin opens in one hook and closes in a later one (a
        connection opened in collect_credentials, closed in verify): a call that
        ends between the two still releases it.  Cleanups run last-added first;
        one that raises is logged (naming ``plugin``) and the others still run.
        Running a cleanup twice must be harmless (close an already closed socket).
        """
        self._cleanups.append((function, plugin))

    def run_cleanups(self):
        """Run and forget the cleanups (the host calls this once, in a ``finally``)."""
        while self._cleanups:
            function, plugin = self._cleanups.pop()
            try:
                function()
            except Exception as exc:  # a cleanup cannot change the outcome; say so
                self.log.error("cleanup %s failed: %s: %s" % (
                    getattr(function, "__qualname__", function), type(exc).__name__, exc), plugin)

    # -- credentials ----------------------------------------------------

    def ask_authtok(self, prompt="Password: ", key=PASSWORD, echo=False, share=True):
        """The line's main secret, with the core's first-pass semantics.

        The first key asked for this way is the one shared with the PAM stack:
        ``use_first_pass`` takes PAM_AUTHTOK and never prompts,
        ``try_first_pass`` takes it if present (and the host asks again if it
        was wrong), otherwise the user is prompted (``authtok_prompt``
        overrides ``prompt``).  An empty answer is refused unless ``nullok``.
        What was prompted is set as PAM_AUTHTOK for the next module when
        ``share`` is true.
        """
        if key in self.credentials:
            return self.credentials[key]
        if self._authtok_key is None:
            self._authtok_key = key
        elif self._authtok_key is not key:
            return self.ask_secret(prompt, key=key, echo=echo)
        core = self.core
        stacked = self.pam.authtok
        if core.use_first_pass:
            if not stacked:
                raise CredentialUnavailable(
                    "use_first_pass: no password from a previous module in the stack")
            secret = Secret(stacked, "stack")
        elif core.try_first_pass and stacked and self.first_pass_allowed:
            secret = Secret(stacked, "stack")
        else:
            secret = Secret(self._prompt(core.authtok_prompt or prompt, echo), "prompt")
            if share:
                self._share_authtok = secret
        self.log.add_secret(secret.reveal())
        if not secret and (not core.nullok or self.flags & PAM_DISALLOW_NULL_AUTHTOK):
            raise CredentialUnavailable(
                "empty password refused (%s)" % ("the application set PAM_DISALLOW_NULL_AUTHTOK"
                                                 if core.nullok else "the line does not say nullok"))
        self.credentials[key] = secret
        return secret

    def ask_secret(self, prompt, key, echo=False):
        """Prompt for another secret (a second factor, a challenge response)."""
        if key in self.credentials:
            return self.credentials[key]
        secret = Secret(self._prompt(prompt, echo), "prompt")
        self.log.add_secret(secret.reveal())
        self.credentials[key] = secret
        return secret

    def forward_authtok(self, secret):
        """Set what the next module gets as PAM_AUTHTOK (``forward_pass``)."""
        self._share_authtok = secret

    def shared_authtok(self):
        return self._share_authtok

    def forget_stacked_credentials(self):
        """For the try_first_pass retry: drop what came from the stack, prompt next time."""
        for key in [k for k, v in self.credentials.items() if v.source == "stack"]:
            del self.credentials[key]
        self.first_pass_allowed = False
        self._authtok_key = None

    def used_stacked_credentials(self):
        return any(v.source == "stack" for v in self.credentials.values())

    def _prompt(self, text, echo):
        answer = self.conversation.prompt(text, echo=echo)
        if answer is None:
            raise ConversationError("the application gave no answer to the prompt")
        return answer

    # -- messages -------------------------------------------------------

    def tell_user(self, text):
        """Queue a message for the user; shown when ``show_errors`` is on."""
        self.messages.append(text)

    def __repr__(self):
        return "<LoginContext %s user=%r service=%r>" % (self.function, self.user, self.service)
