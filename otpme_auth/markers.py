"""Hook markers that pluggy understands, without importing pluggy.

pluggy recognises a hook specification or implementation by a dict stored on
the function as ``<project>_spec`` / ``<project>_impl``.  These markers set
exactly those dicts, so ``pluggy.PluginManager("otpme_auth")`` validates our
hookspecs and every plugin, while the PAM login path never pays for importing
pluggy (its import of ``typing`` and ``inspect`` costs as much as the whole
pam_python floor; see docs/performance.md).
"""

PROJECT = "otpme_auth"
SPEC_ATTR = PROJECT + "_spec"
IMPL_ATTR = PROJECT + "_impl"


def hookspec(function):
    """Mark ``function`` as a hook specification (used only in hookspecs.py)."""
    setattr(function, SPEC_ATTR, {
        "firstresult": False,
        "historic": False,
        "warn_on_impl": None,
        "warn_on_impl_args": None,
    })
    return function


def hookimpl(function=None, **unsupported):
    """Mark ``function`` as the implementation of the hook of the same name.

    Use it bare: ``@hookimpl``.  pluggy's ordering and wrapper options are not
    accepted: otpme-auth calls plugins in the order the PAM line names them and
    never lets call order decide a login (docs/architecture.md).
    """
    if unsupported:
        raise TypeError(
            "otpme_auth.hookimpl takes no options (got %s): plugins run in the "
            "order the PAM line names them" % ", ".join(sorted(unsupported)))
    if function is None:
        return hookimpl
    setattr(function, IMPL_ATTR, {
        "wrapper": False,
        "hookwrapper": False,
        "optionalhook": False,
        "tryfirst": False,
        "trylast": False,
        "specname": None,
    })
    return function


def is_hookimpl(obj):
    """True if ``obj`` (a function or bound method) carries our impl marker."""
    marker = getattr(obj, IMPL_ATTR, None)
    if marker is None:
        marker = getattr(getattr(obj, "__func__", None), IMPL_ATTR, None)
    return isinstance(marker, dict)
