"""The boundary with libpam: pam_python's handle in, a PAM return code out.

The generated script ``pam_otpme_auth.py`` (see :mod:`otpme_auth.install`)
calls these functions.  Nothing raised below reaches libpam as a traceback:
every path ends in a PAM code, and only ALLOW ends in PAM_SUCCESS.
"""

from .context import PamItems
from .conversation import PamConversation
from .login import run
from .registry import DEFAULT_CACHE_DIR

_CRED_ACTIONS = ((0x8, "reinitialize"), (0x10, "refresh"), (0x4, "delete"), (0x2, "establish"))
PAM_SILENT = 0x8000


class PamHandleItems(PamItems):
    """PAM items read from and written to pam_python's handle."""

    def __init__(self, pamh):
        self.pamh = pamh

    @property
    def authtok(self):
        return self.pamh.authtok

    def set_authtok(self, value):
        self.pamh.authtok = value

    @property
    def rhost(self):
        return self.pamh.rhost

    @property
    def ruser(self):
        return self.pamh.ruser

    @property
    def tty(self):
        return self.pamh.tty

    @property
    def xdisplay(self):
        return getattr(self.pamh, "xdisplay", None)

    def getenv(self, name):
        try:
            return self.pamh.env[name]
        except (KeyError, self.pamh.exception):
            return None

    def putenv(self, name, value):
        if value is None:
            try:
                del self.pamh.env[name]
            except (KeyError, self.pamh.exception):
                pass
        else:
            self.pamh.env[name] = value


class _Conversation(PamConversation):
    def __init__(self, pamh, silent):
        super().__init__(pamh)
        self.silent = silent

    def _send(self, style, text):
        if self.silent and not style.startswith("prompt"):
            return None  # PAM_SILENT: the application asked for no messages
        return super()._send(style, text)


def _call(function, pamh, flags, argv, cache_dir, site_dirs=None, default_verifiers=None,
          unread_pth=()):
    try:
        try:
            user = pamh.get_user(None)
        except pamh.exception:
            user = None
        action = "establish"
        if function == "setcred":
            action = next((name for bit, name in _CRED_ACTIONS if flags & bit), "establish")
        outcome = run(function, list(argv[1:]), user, pamh.service or "?",
                      _Conversation(pamh, bool(flags & PAM_SILENT)), PamHandleItems(pamh),
                      cache_dir=cache_dir, action=action, flags=flags, site_dirs=site_dirs,
                      default_verifiers=_legacy_default() if default_verifiers is None
                      else default_verifiers, unread_pth=unread_pth)
        return getattr(pamh, "PAM_" + outcome.code)
    except Exception:  # last line of defence: never a traceback, never success
        return pamh.PAM_SERVICE_ERR


#: The PAM functions pam_python looks up in the entry script, in this order.
PAM_FUNCTIONS = ("authenticate", "setcred", "acct_mgmt", "open_session", "close_session",
                 "chauthtok")


def pam_functions(cache_dir=DEFAULT_CACHE_DIR, site_dirs=None, default_verifiers=(),
                  unread_pth=()):
    """The ``pam_sm_*`` functions of :data:`PAM_FUNCTIONS`, bound to an installation.

    The entry script assigns them to its module-level ``pam_sm_*`` names.
    ``site_dirs`` (the script's ``SITE_DIRS``) names the plugin registry's cache;
    ``default_verifiers`` (its ``DEFAULT_VERIFIERS``) is the same for every function,
    so that every PAM call resolves a line alike; ``unread_pth``: the site
    directories the script put on ``sys.path`` without reading their ``.pth``
    files (the registry reads those that matter).
    """
    unread_pth = tuple(unread_pth)

    def bind(function):
        if function == "chauthtok":
            return chauthtok

        def pam_sm(pamh, flags, argv):
            return _call(function, pamh, flags, argv, cache_dir, site_dirs,
                         tuple(default_verifiers), unread_pth)
        pam_sm.__name__ = pam_sm.__qualname__ = "pam_sm_" + function
        return pam_sm
    return tuple(bind(f) for f in PAM_FUNCTIONS)


def _legacy_default():
    from .install import DEFAULT_VERIFIERS
    return DEFAULT_VERIFIERS


# Entry points of scripts generated before pam_functions() (regenerate them with
# `otpme-auth install-pam`); they get install-pam's default verifier.
def authenticate(pamh, flags, argv, cache_dir=DEFAULT_CACHE_DIR):
    return _call("authenticate", pamh, flags, argv, cache_dir)


def setcred(pamh, flags, argv, cache_dir=DEFAULT_CACHE_DIR):
    return _call("setcred", pamh, flags, argv, cache_dir)


def acct_mgmt(pamh, flags, argv, cache_dir=DEFAULT_CACHE_DIR):
    return _call("acct_mgmt", pamh, flags, argv, cache_dir)


def open_session(pamh, flags, argv, cache_dir=DEFAULT_CACHE_DIR):
    return _call("open_session", pamh, flags, argv, cache_dir)


def close_session(pamh, flags, argv, cache_dir=DEFAULT_CACHE_DIR):
    return _call("close_session", pamh, flags, argv, cache_dir)


def chauthtok(pamh, flags, argv, cache_dir=DEFAULT_CACHE_DIR):
    # Passwords are changed on the server (otpme-auth-admin), not through PAM.
    return pamh.PAM_IGNORE
