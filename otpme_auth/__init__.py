"""otpme-auth: a plugin-oriented PAM authentication framework.

What a plugin author needs is importable from here::

    from otpme_auth import hookimpl, flag, allow, deny, unavailable, abstain
"""

__version__ = "0.1.0"

from .context import ONE_TIME_CODE, PASSWORD, Key, LoginContext, Secret  # noqa: E402
from .errors import (  # noqa: E402
    ConfigError, ConversationError, CredentialUnavailable, LoginRefused, OtpmeAuthError,
    PluginError, StateFileError,
)
from .markers import hookimpl  # noqa: E402
from .options import (  # noqa: E402
    Option, OptionsView, choice, flag, integer, octal_mode, path, seconds, text,
)
from .results import Decision, Verdict, abstain, allow, deny, unavailable  # noqa: E402

__all__ = [
    "hookimpl", "Verdict", "Decision", "allow", "deny", "unavailable", "abstain",
    "Option", "OptionsView", "flag", "text", "integer", "seconds", "choice", "octal_mode", "path",
    "Key", "Secret", "LoginContext", "PASSWORD", "ONE_TIME_CODE",
    "OtpmeAuthError", "ConfigError", "PluginError", "ConversationError",
    "CredentialUnavailable", "LoginRefused", "StateFileError",
]
