"""The hook markers, for imports written before they moved to :mod:`otpme_auth.hookspecs`.

Use ``from otpme_auth import hookimpl``; the login path never imports this module.
"""

from .hookspecs import IMPL_ATTR, PROJECT, SPEC_ATTR, hookimpl, hookspec, is_hookimpl

__all__ = ["IMPL_ATTR", "PROJECT", "SPEC_ATTR", "hookimpl", "hookspec", "is_hookimpl"]
