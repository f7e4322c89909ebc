"""The plugin kit: test an otpme-auth plugin alone, then through real libpam.

Installed with otpme-auth as a pytest plugin (entry point ``pytest11``), so a
plugin's tests get these fixtures with no conftest:

``run_login``
    ``run_login(plugins, args, user=..., answers=..., authtok=...)`` runs one
    PAM call through the real host with a fresh registry holding only
    ``plugins`` ({name: module-or-object}); returns a :class:`LoginResult`
    with the PAM code, the prompts, the messages, the log and the hook calls.
``make_context``
    a :class:`~otpme_auth.context.LoginContext` for calling one hook directly.
``scripted_conversation``
    ``scripted_conversation("answer", ...)``.
``make_plugin``
    ``make_plugin("name", options=[...], otpme_auth_verify=lambda ctx: allow())``
    builds a small plugin from functions, for tests that need a neighbour.
``pam_harness``
    a :class:`~otpme_auth.testing.pam.PamHarness`: write PAM service files in a
    temp dir and run them with pamtester under pam_wrapper and pam_python.
"""

from ..context import LoginContext, PamItems
from ..conversation import ScriptedConversation
from ..log import Log
from ..login import run
from ..options import CORE, CORE_OPTIONS, OptionsView, resolve
from ..registry import StaticRegistry, declared_options


def make_plugin(name="plugin", options=(), **hooks):
    """A plugin module built from functions, each marked as a hook implementation.

    ``make_plugin("p", options=[flag("p_on", enables=True)],
    otpme_auth_verify=lambda ctx: allow())``.  Functions take hook arguments by
    name, without default values.
    """
    import types

    from ..hookspecs import hookimpl
    module = types.ModuleType(name)
    if options:
        module.otpme_auth_declare_options = hookimpl(lambda: list(options))
    for hook, func in hooks.items():
        setattr(module, hook, hookimpl(func))
    return module


class LoginResult:
    """What :func:`run_login` saw."""

    def __init__(self, outcome, conversation, pam):
        self.code = outcome.code
        self.ctx = outcome.ctx
        self.prompts = conversation.prompts
        self.shown = conversation.shown
        self.transcript = conversation.transcript
        self.log = [line for _, line in outcome.log.records]
        self.log_records = outcome.log.records
        self.calls = list(outcome.host.calls) if outcome.host else []
        self.authtok = pam.authtok

    @property
    def ok(self):
        return self.code == "SUCCESS"

    def called(self, hook, plugin=None):
        """True if ``hook`` ran (in ``plugin``, if given)."""
        return any(h == hook and (plugin is None or p == plugin) for h, p in self.calls)

    def explain(self):
        """What a failing test needs to see: the code, the conversation, the log, the calls."""
        lines = ["PAM_%s" % self.code, "prompts: %r" % (self.prompts,)]
        if self.shown:
            lines.append("shown: %r" % (self.shown,))
        lines.append("hook calls: %s" % (", ".join("%s:%s" % (p, h.replace("otpme_auth_", ""))
                                                 for h, p in self.calls) or "none"))
        lines += ["log: " + line for line in self.log[-20:]] or ["log: (empty)"]
        return "\n  ".join(lines)

    def assert_code(self, expected):
        """Assert the PAM code (``"SUCCESS"``, ``"AUTH_ERR"``...); the message explains a
        failure (as pytester's ``RunResult.assert_outcomes`` does).  Returns ``self``."""
        if self.code != expected:
            raise AssertionError("expected PAM_%s, got %s" % (expected, self.explain()))
        return self

    def __repr__(self):
        # pytest prints this for `assert result.ok`, so it carries the explanation.
        return "<LoginResult %s>" % self.explain()


def skip_or_fail(message):
    """A real component the test needs is missing: skip it with ``message``, or fail it
    under ``OTPME_AUTH_REQUIRE_REAL=1`` (CI), where a skip would hide a broken install."""
    import os

    import pytest
    if os.environ.get("OTPME_AUTH_REQUIRE_REAL") == "1":
        pytest.fail(message)
    pytest.skip(message)


def check_keys(*modules):
    """Assert that the :class:`~otpme_auth.Key` objects of the same name declared in
    ``modules`` (a producer's and its consumers' key modules) agree on their type.

    Plugins never import each other, so producer and consumer each declare a key;
    this is the test that they declare the same one.  Returns the keys by name.
    """
    from ..context import Key
    seen = {}
    for module in modules:
        for attr, key in vars(module).items():
            if not isinstance(key, Key):
                continue
            first = seen.setdefault(key.name, (module.__name__, attr, key))
            if first[2].type is not key.type:
                raise AssertionError("key %r is %s in %s.%s but %s in %s.%s" % (
                    key.name, first[2].type.__name__, first[0], first[1],
                    key.type.__name__, module.__name__, attr))
    return {name: entry[2] for name, entry in seen.items()}


def run_login(plugins, args=(), user="alice", answers=(), authtok=None, function="authenticate",
              service="otpme-test", action="establish", debug=True, rhost=None, tty=None,
              flags=0, default_verifiers=(), xdisplay=None):
    """Run one PAM ``function`` through the host with only ``plugins`` installed.

    :param plugins: ``{name: module_or_object}`` as entry points would give them.
    :param args: the PAM line's options (a string is split like libpam does).
    :param answers: what the user types, in order.
    :param authtok: PAM_AUTHTOK left by a previous module in the stack.
    :param rhost: PAM_RHOST (the remote host), ``tty``: PAM_TTY, ``xdisplay``: PAM_XDISPLAY.
    :param flags: the PAM flags the application passes (e.g. 0x1, PAM_DISALLOW_NULL_AUTHTOK).
    :param default_verifiers: as the entry script's ``DEFAULT_VERIFIERS`` (none by default).
    """
    from ..options import split_line
    if isinstance(args, str):
        args = split_line(args)
    conversation = ScriptedConversation(answers)
    pam = PamItems(authtok=authtok, rhost=rhost, tty=tty, xdisplay=xdisplay)
    log = Log(service, debug=debug, to_syslog=False)
    outcome = run(function, list(args), user, service, conversation, pam,
                  registry=StaticRegistry(plugins), log=log, action=action, flags=flags,
                  default_verifiers=default_verifiers)
    return LoginResult(outcome, conversation, pam)


def make_context(user="alice", service="otpme-test", core=None, answers=(), authtok=None,
                 function="authenticate", rhost=None, tty=None):
    """A context for calling a single hook; ``core`` overrides core options by name."""
    values = {o.name: o.default for o in CORE_OPTIONS}
    values.update(core or {})
    view = OptionsView(CORE, values, {n: "test" for n in values})
    return LoginContext(user, service, view, ScriptedConversation(answers),
                        Log(service, debug=True, to_syslog=False),
                        PamItems(authtok=authtok, rhost=rhost, tty=tty), function)


def options_for(plugin, args=(), name="plugin"):
    """The frozen options ``plugin`` would get from a line (for calling a hook directly)."""
    from ..options import split_line
    if isinstance(args, str):
        args = split_line(args)
    registry = StaticRegistry({name: plugin})
    line = resolve([name] + list(args), registry.installed(), lambda n: declared_options(plugin))
    return dict(line.plugins)[name]


__all__ = ["run_login", "make_context", "check_keys", "skip_or_fail", "make_plugin", "options_for", "LoginResult",
           "ScriptedConversation"]
