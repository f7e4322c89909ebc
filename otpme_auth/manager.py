"""pluggy's PluginManager for otpme-auth: validation, introspection, the plugin kit.

Not imported on the login path (pluggy's import costs ~20 ms); used when the
registry is scanned, by ``otpme-auth check-config``, and in tests.
"""

import pluggy

from . import hookspecs
from .hookspecs import PROJECT


def build_plugin_manager():
    """A fresh manager with our hookspecs (one per scan or test, never global)."""
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


def validate_plugin(name, obj):
    """Register ``obj`` in a fresh manager; raise if pluggy finds it invalid.

    Catches implementations whose arguments the spec does not offer and
    marked functions whose names match no hook (typos like ``otpme_auth_verfy``).
    """
    pm = build_plugin_manager()
    pm.register(obj, name=name)
    unknown = sorted(name for name, hook in vars(pm.hook).items()
                     if isinstance(hook, pluggy.HookCaller) and not hook.has_spec()
                     and hook.get_hookimpls())
    if unknown:
        raise pluggy.PluginValidationError(obj, "no such hook: %s" % ", ".join(unknown))
    return pm
