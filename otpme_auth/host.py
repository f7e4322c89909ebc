"""The typed call layer: runs hook implementations of the enabled plugins.

Core code never calls hooks any other way.  We call each implementation
ourselves instead of through ``pluggy``'s ``pm.hook`` because we need, per
call: the plugin's own ``options`` argument, its name on any exception
(pluggy does not record which plugin raised), a deterministic order (the PAM
line's, not pluggy's newest-first), tracing, and no pluggy import on the login
path.  The implementations are validated by pluggy when the registry is built
(:mod:`otpme_auth.manager`); :func:`load_plugin` re-checks the argument names
cheaply so a plugin changed in place cannot ask for an argument that does
not exist.
"""

import time

from .errors import OtpmeAuthError, PluginError
from .hookspecs import HOOKS, is_hookimpl


class LoadedPlugin:
    """An enabled plugin: its name, object, options and implemented hooks."""

    __slots__ = ("name", "obj", "options", "impls")

    def __init__(self, name, obj, options, impls):
        self.name = name
        self.obj = obj
        self.options = options
        self.impls = impls  # hook name -> (function, argument names)

    def __repr__(self):
        return "<LoadedPlugin %s hooks=%s>" % (self.name, sorted(self.impls))


def find_impls(name, obj):
    """Map hook name -> (function, argnames) for the marked functions of ``obj``."""
    impls = {}
    for hook, allowed in HOOKS.items():
        func = getattr(obj, hook, None)
        if func is None or not is_hookimpl(func):
            continue
        code = getattr(func, "__func__", func).__code__
        argnames = code.co_varnames[:code.co_argcount]
        if hasattr(func, "__self__"):
            argnames = argnames[1:]
        defaults = getattr(getattr(func, "__func__", func), "__defaults__", None)
        if defaults:
            raise PluginError(name, "%s must not have default-valued arguments" % hook)
        unknown = [a for a in argnames if a not in allowed]
        if unknown:
            raise PluginError(name, "%s asks for %s, which the hook does not offer (it offers %s)"
                              % (hook, ", ".join(unknown), ", ".join(allowed)))
        impls[hook] = (func, argnames)
    return impls


def load_plugin(name, obj, options):
    return LoadedPlugin(name, obj, options, find_impls(name, obj))


class Host:
    """Calls hooks on the enabled plugins, in line order, failing closed."""

    def __init__(self, plugins, log, trace=False):
        self.plugins = list(plugins)
        self.log = log
        self.trace = trace
        self.calls = []  # (hook, plugin) in call order, for the plugin kit

    def implementers(self, hook):
        _check_hook(hook)
        return [p.name for p in self.plugins if hook in p.impls]

    # -- one method per hook: core code calls these, so a misspelt hook is an
    #    AttributeError, never a silent empty result --------------------------

    def pre_auth(self, ctx):
        return self.call("otpme_auth_pre_auth", ctx)

    def collect_credentials(self, ctx):
        return self.call("otpme_auth_collect_credentials", ctx)

    def credentials_collected(self, ctx):
        return self.call("otpme_auth_credentials_collected", ctx)

    def verify(self, ctx):
        return self.call("otpme_auth_verify", ctx)

    def verify_fallback(self, ctx, unavailable):
        return self.call("otpme_auth_verify_fallback", ctx, unavailable=unavailable)

    def post_login(self, ctx):
        return self.call("otpme_auth_post_login", ctx)

    def login_failed(self, ctx, decision):
        return self.call("otpme_auth_login_failed", ctx, decision=decision)

    def setcred(self, ctx, action):
        return self.call("otpme_auth_setcred", ctx, action=action)

    def check_account(self, ctx):
        return self.call("otpme_auth_check_account", ctx)

    def open_session(self, ctx):
        return self.call("otpme_auth_open_session", ctx)

    def close_session(self, ctx, errors):
        """Reverse line order; every plugin is called, exceptions collected in ``errors``."""
        return self.call("otpme_auth_close_session", ctx, reverse=True, errors=errors)

    def call(self, hook, ctx, reverse=False, errors=None, **kwargs):
        """Call ``hook`` on every plugin implementing it; return ``[(plugin, result)]``.

        An exception that is not an :class:`OtpmeAuthError` becomes a
        :class:`PluginError` naming the plugin and hook (the log scrubs the
        credentials of this login from its text).  The first exception stops
        the call, unless ``errors`` is a list: then exceptions are collected
        there and every plugin is still called (close_session).
        """
        _check_hook(hook)
        results = []
        plugins = reversed(self.plugins) if reverse else self.plugins
        for plugin in plugins:
            impl = plugin.impls.get(hook)
            if impl is None:
                continue
            func, argnames = impl
            offered = dict(kwargs, ctx=ctx, options=plugin.options)
            self.calls.append((hook, plugin.name))
            started = time.monotonic()
            try:
                try:
                    result = func(**{a: offered[a] for a in argnames})
                except OtpmeAuthError as exc:
                    if getattr(exc, "plugin", None) is None:
                        exc.plugin = plugin.name
                    raise
                except Exception as exc:
                    raise PluginError(plugin.name, "%s raised %s: %s%s" % (
                        hook, type(exc).__name__, _what(exc), _where(exc))) from exc
            except OtpmeAuthError as exc:
                if errors is None:
                    raise
                errors.append(exc)
                continue
            if self.trace:
                self.log.info("trace: %s -> %r (%.1f ms)" % (
                    hook, result, (time.monotonic() - started) * 1000), plugin.name)
            results.append((plugin.name, result))
        return results


def _check_hook(hook):
    if hook not in HOOKS:
        raise ValueError("no hook named %r (the hooks: %s)" % (hook, ", ".join(sorted(HOOKS))))


def _what(exc):
    """The exception's text, but a codec's without the character and its position: they
    are often from a password (``secret.reveal().encode()`` of a non-UTF-8 one)."""
    if isinstance(exc, UnicodeError) and hasattr(exc, "reason"):
        return "%s (%s)" % (exc.encoding, exc.reason)
    return exc


def _where(exc):
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return ""
    return " (at %s:%d)" % (tb.tb_frame.f_code.co_filename, tb.tb_lineno)
