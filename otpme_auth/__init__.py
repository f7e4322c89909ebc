"""otpme-auth: a plugin-oriented PAM authentication framework.

What a plugin author needs is importable from here::

    from otpme_auth import hookimpl, flag, allow, deny, unavailable, abstain

The names are loaded on first use (PEP 562), so ``import otpme_auth.otp`` (the
server does) does not pull in the login path's modules.
"""

__version__ = "0.1.0"

_EXPORTS = {
    "hookimpl": "hookspecs",
    "Verdict": "results", "Decision": "results", "allow": "results", "deny": "results",
    "unavailable": "results", "abstain": "results",
    "Option": "options", "OptionsView": "options", "flag": "options", "text": "options",
    "integer": "options", "seconds": "options", "choice": "options", "octal_mode": "options",
    "path": "options",
    "Key": "context", "Secret": "context", "LoginContext": "context", "PASSWORD": "context",
    "ONE_TIME_CODE": "context",
    "OtpmeAuthError": "errors", "ConfigError": "errors", "PluginError": "errors",
    "ConversationError": "errors", "CredentialUnavailable": "errors", "LoginRefused": "errors",
    "StateFileError": "errors",
    # hmac.compare_digest without importing hmac (with hashlib and OpenSSL, ~3 ms)
    "compare_digest": "otp._hmac",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError("module 'otpme_auth' has no attribute %r" % name)
    value = getattr(__import__("%s.%s" % (__name__, module), fromlist=["_"]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
