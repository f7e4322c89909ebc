import types

import pytest

from otpme_auth import hookimpl


def make_plugin(name="plugin", options=(), **hooks):
    """A plugin module built from functions: make_plugin(otpme_auth_verify=lambda ctx: ...)."""
    module = types.ModuleType(name)
    if options:
        module.otpme_auth_declare_options = hookimpl(lambda: list(options))
    for hook, func in hooks.items():
        setattr(module, hook, hookimpl(func))
    return module


@pytest.fixture(name="make_plugin")
def _make_plugin():
    return make_plugin
