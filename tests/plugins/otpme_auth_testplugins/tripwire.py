"""Installed but never enabled in the tests: if it ever runs, every login fails.

It allows nothing, denies everything, and leaves a mark in every hook, so a
test that sees a successful login proves the host never called it.
"""

from otpme_auth import deny, hookimpl


@hookimpl
def otpme_auth_pre_auth(ctx):
    return deny("tripwire ran: an installed plugin that the line does not name was called")


@hookimpl
def otpme_auth_verify(ctx):
    return deny("tripwire ran")


@hookimpl
def otpme_auth_open_session(ctx):
    raise RuntimeError("tripwire ran")
