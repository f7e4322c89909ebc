"""The small, flat set of errors otpme-auth raises, and what PAM sees for each.

Every error text is written for an administrator reading the log: it names
the option, plugin or file concerned and never contains a secret.
"""


class OtpmeAuthError(Exception):
    """Base class.  ``pam_code`` is what the PAM boundary returns for it."""

    pam_code = "SERVICE_ERR"


class ConfigError(OtpmeAuthError):
    """The PAM line or a configuration file is wrong (unknown option, bad value)."""

    pam_code = "SERVICE_ERR"


class PluginError(OtpmeAuthError):
    """A plugin is broken, missing, or raised; the login fails closed."""

    pam_code = "SERVICE_ERR"

    def __init__(self, plugin, message):
        super().__init__("plugin %s: %s" % (plugin, message))
        self.plugin = plugin
        self.detail = message  # without the plugin's name, for lines that name it already


class ConversationError(OtpmeAuthError):
    """The application could not prompt the user (no conversation, or it failed)."""

    pam_code = "CONV_ERR"


class CredentialUnavailable(OtpmeAuthError):
    """A credential the line requires is not there (e.g. use_first_pass, no PAM_AUTHTOK)."""

    pam_code = "AUTH_ERR"


class LoginRefused(OtpmeAuthError):
    """Raised by a plugin to refuse the login outright (e.g. a pre-auth deny list).

    ``user_message``, if given, may be shown to the user (with ``show_errors``);
    the exception text goes to the log only.
    """

    pam_code = "AUTH_ERR"

    def __init__(self, reason, user_message=None):
        super().__init__(reason)
        self.reason = reason
        self.user_message = user_message


class StateFileError(OtpmeAuthError):
    """A state file is unsafe (wrong owner, mode, a symlink), corrupt or unwritable.

    ``errno`` is the operating system's error number when one caused it, else None.
    """

    pam_code = "AUTH_ERR"
    errno = None
