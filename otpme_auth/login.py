"""Run one PAM call through the plugins: shared by the PAM entry, the CLI and the kit."""

import os

from . import pipeline
from .context import LoginContext
from .errors import OtpmeAuthError
from .host import Host, load_plugin
from .log import Log
from .options import resolve
from .registry import DEFAULT_CACHE_DIR, Registry

FUNCTIONS = ("authenticate", "setcred", "acct_mgmt", "open_session", "close_session")


class Outcome:
    """What a call produced: the PAM code name, and for inspection its context and host."""

    __slots__ = ("code", "ctx", "host", "log")

    def __init__(self, code, ctx, host, log):
        self.code, self.ctx, self.host, self.log = code, ctx, host, log

    def __repr__(self):
        return "<Outcome %s>" % self.code


def run(function, args, user, service, conversation, pam=None, registry=None,
        cache_dir=DEFAULT_CACHE_DIR, log=None, action="establish", flags=0, site_dirs=None,
        default_verifiers=(), unread_pth=()):
    """Resolve the line, load the enabled plugins, run ``function``; never raises.

    :param function: one of :data:`FUNCTIONS`.
    :param args: the module arguments of the PAM line.
    :param site_dirs: the installation's site directories (the entry script's
        ``SITE_DIRS``): they name the plugin registry's cache.
    :param default_verifiers: enabled when the line enables no verifier (the entry
        script's ``DEFAULT_VERIFIERS``); the same for every PAM function of a line.
    :param unread_pth: site directories on ``sys.path`` whose ``.pth`` files were
        not read (:class:`~otpme_auth.registry.Registry`).
    :returns: an :class:`Outcome`; ``code`` is a PAM code name.
    """
    log = log or Log(service, function=function)
    _early_log_options(args, log)
    ctx = host = None
    try:
        if not user or not isinstance(user, str):
            log.error("no user name from the application")
            return Outcome("USER_UNKNOWN", None, None, log)
        registry = registry or Registry(cache_dir, log, paths=site_dirs or None,
                                           unread_pth=unread_pth)
        line = resolve(args, registry.installed(), registry.options_of, default_verifiers)
        plugins = [load_plugin(name, registry.load(name), view) for name, view in line.plugins]
        if function == "authenticate" and os.geteuid() != 0 and any(
                getattr(p.obj, "OTPME_AUTH_NEEDS_ROOT", False) for p in plugins):
            # A screen locker runs PAM as the user: the root helper verifies for them.
            from .helper.client import stand_in
            plugins = stand_in(plugins, log)
        host = Host(plugins, log, trace=line.core.trace)
        ctx = LoginContext(user, service, line.core, conversation, log, pam, function, flags)
        if pam is not None and pam.authtok:
            log.add_secret(pam.authtok)
        log.debug("%s for %s: plugins %s" % (function, user, ", ".join(line.plugin_names) or "none"))
        for raw, why in line.idle:
            log.debug("%s does nothing on this line: %s" % (raw, why))
        if function == "authenticate":
            code = pipeline.authenticate(host, ctx)
            shared = ctx.shared_authtok()
            if shared is not None and pam is not None:
                pam.set_authtok(shared.reveal())
        elif function == "setcred":
            code = pipeline.setcred(host, ctx, action)
        elif function == "acct_mgmt":
            code = pipeline.check_account(host, ctx)
        elif function == "open_session":
            code = pipeline.open_session(host, ctx)
        elif function == "close_session":
            code = pipeline.close_session(host, ctx)
        else:
            raise ValueError("unknown PAM function %r" % function)
    except OtpmeAuthError as exc:
        log.error(getattr(exc, "detail", exc), getattr(exc, "plugin", None))
        code = exc.pam_code
    except Exception as exc:  # a bug of ours: fail closed, no traceback to libpam
        log.error("internal error in %s: %s: %s" % (function, type(exc).__name__, exc))
        code = "SERVICE_ERR"
    finally:
        if ctx is not None:
            ctx.run_cleanups()
    return Outcome(code, ctx, host, log)


def _early_log_options(args, log):
    """Apply ``debug`` and ``log_file`` before parsing, so parse errors reach the file too."""
    for arg in args:
        if arg == "debug":
            log.debug_enabled = True
        elif arg.startswith("log_file=") and arg[9:].startswith("/") and "\0" not in arg:
            log.file = arg[9:]


__all__ = ["run", "Outcome", "FUNCTIONS"]
