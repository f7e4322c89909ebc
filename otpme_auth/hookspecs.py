"""Every hook of otpme-auth, in the order a login calls them.

A plugin implements a hook by defining a function of the same name marked
with :func:`otpme_auth.hookimpl`, taking any subset of the arguments listed
here (by name).  Two arguments are offered to every hook but the first:

``ctx``
    the :class:`~otpme_auth.context.LoginContext` of this PAM call.
``options``
    this plugin's own options from the PAM line, a frozen
    :class:`~otpme_auth.options.OptionsView`.

Plugins run in the order the PAM line names them.  That order decides only
the order of prompts and side effects, never the outcome: verdicts are
combined by the rule in :mod:`otpme_auth.results`.

Raising: an exception from any hook fails the PAM call closed (never
PAM_SUCCESS) and is logged with the plugin's name and hook.  Raise
:class:`~otpme_auth.errors.LoginRefused` to refuse a login on purpose, with
a reason for the log and, optionally, a message for the user.

The hooks are pluggy hook specifications (``pluggy.PluginManager("otpme_auth")``
validates plugins against them); see docs/hooks.md for a diagram and
docs/architecture.md for how they are called.
"""

# ---------------------------------------------------------------------------
# The markers: pluggy's attributes, without importing pluggy
# ---------------------------------------------------------------------------
#
# pluggy recognises a hook specification or implementation by a dict stored on
# the function as ``<project>_spec`` / ``<project>_impl``.  These markers set
# exactly those dicts, so ``pluggy.PluginManager("otpme_auth")`` validates our
# hookspecs and every plugin, while the PAM login path never pays for importing
# pluggy (its import of ``typing`` and ``inspect`` costs as much as the whole
# pam_python floor; see docs/performance.md).  They live here, with the hooks,
# because the login path needs both: one module less to load at every login.

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

# ---------------------------------------------------------------------------
# Declaration: once per plugin, before any login hook
# ---------------------------------------------------------------------------


@hookspec
def otpme_auth_declare_options():
    """Declare the options this plugin owns on the PAM line.

    Called when the plugin registry is refreshed (to learn which options
    enable which plugin) and at each PAM call for the enabled plugins (to type
    and validate their values).  Must be cheap and side-effect free.

    :returns: a list of :class:`~otpme_auth.options.Option` (see
        :func:`~otpme_auth.options.flag`, ``text``, ``integer``, ``seconds``,
        ``choice``, ``octal_mode``, ``path``).  Options marked ``enables=True``
        enable the plugin when given.  The core's options (``debug``,
        ``try_first_pass``, ...) may not be declared.
    """


@hookspec
def otpme_auth_add_cli_commands(subparsers):
    """Add subcommands to the ``otpme-auth`` command line.

    Called by ``otpme-auth`` (never during a login) for every installed plugin
    that is not broken, whether or not a PAM line enables it: an administrator
    enrolls a token before any line names the plugin.

    :param subparsers: the ``argparse`` subparsers action of ``otpme-auth``.
        Add a parser with ``subparsers.add_parser(name, help=...)`` and set
        ``run`` with ``parser.set_defaults(run=function)``; ``function(args,
        out)`` returns the exit code (0 success, 2 a user mistake) and may
        raise :class:`~otpme_auth.errors.OtpmeAuthError` for a one-line error.
    :returns: ignored.
    """


# ---------------------------------------------------------------------------
# Authentication (pam_sm_authenticate), phase 1: before any prompt
# ---------------------------------------------------------------------------


@hookspec
def otpme_auth_pre_auth(ctx, options):
    """Refuse or prepare the login before anything is asked.

    Runs first, for every enabled plugin in line order.  Use it for
    allow/deny lists, bringing up the network (802.1x), probing the server,
    deciding on fake prompts for users that have no data.

    :returns: ``None`` to go on, or a DENY :class:`~otpme_auth.results.Decision`
        (``otpme_auth.deny(reason)``) to refuse: the login fails at once with
        PAM_AUTH_ERR (or the decision's ``pam_code``), no prompt is shown and
        no verifier runs.  Any other return value is a plugin bug (fails closed).
    """


# ---------------------------------------------------------------------------
# Phase 2: credential sources
# ---------------------------------------------------------------------------


@hookspec
def otpme_auth_collect_credentials(ctx, options):
    """Gather what the user must provide, before anything is verified.

    Runs after every pre-auth hook passed, in line order.  Prompt only through
    ``ctx.ask_authtok()`` (the line's main secret, with try_first_pass /
    use_first_pass / nullok semantics), ``ctx.ask_secret()`` or
    ``ctx.conversation``; store results in ``ctx.credentials`` or
    ``ctx.stash``.  All prompting happens here, so a user is asked for every
    factor even when the first one is wrong.

    With ``try_first_pass``, if the verdict is DENY and a credential came
    from the PAM stack, this hook runs a second time with prompting forced.

    :returns: ignored (return ``None``).
    """


@hookspec
def otpme_auth_credentials_collected(ctx, options):
    """Act on what the user typed, after every prompt and before any verifier.

    Runs once per collection (again on the try_first_pass retry), in line
    order, after every ``collect_credentials`` hook.  For what needs the
    credential itself before a verifier can reach its server: bringing a
    switch port up with 802.1x (the ``dot1x`` plugin) between the password
    prompt and ``online``'s request.  Never prompt here; never decide here
    (raise :class:`~otpme_auth.errors.LoginRefused` only to refuse outright).
    Data for the verifiers travels on ``ctx.stash`` under the producer's keys.

    :returns: ignored (return ``None``).
    """


# ---------------------------------------------------------------------------
# Phase 3: verification
# ---------------------------------------------------------------------------


@hookspec
def otpme_auth_verify(ctx, options):
    """Judge the collected credentials: a primary verifier's answer.

    Runs for every enabled plugin that implements it, in line order; every
    one is asked (no short-circuit), and the answers are combined by the rule
    of :mod:`otpme_auth.results`: any DENY denies; all ALLOW allows; an
    UNAVAILABLE calls the fallbacks (:func:`otpme_auth_verify_fallback`).

    :returns: a :class:`~otpme_auth.results.Verdict` or a
        :class:`~otpme_auth.results.Decision` (``otpme_auth.allow()``,
        ``deny()``, ``unavailable()``, ``abstain()``).  ``None``, ``True`` or
        anything else is a plugin bug and fails the login closed.
    """


@hookspec
def otpme_auth_verify_fallback(ctx, options, unavailable):
    """Stand in for primary verifiers that could not decide (the offline cache).

    Called only when no primary verifier denied and at least one answered
    UNAVAILABLE; never after a DENY, never when the primaries decided.

    :param unavailable: names of the primary verifiers that were UNAVAILABLE.
    :returns: a Verdict or Decision.  An ALLOW counts only for the primaries
        it names in ``covers`` (``otpme_auth.allow(covers=("online",))``); the
        login is allowed when the allowing fallbacks cover every unavailable
        primary and no fallback denies.
    """


# ---------------------------------------------------------------------------
# Phase 4: after the verdict
# ---------------------------------------------------------------------------


@hookspec
def otpme_auth_post_login(ctx, options):
    """Act on a successful login: cache credentials, greet, create the home.

    Runs only when the combined verdict is ALLOW, in line order.
    ``ctx.verified_by`` names the verifiers that allowed; ``ctx.offline`` is
    true when a fallback allowed.  Raising turns the success into a failure
    (fail closed): do not raise for problems the user can live with, log them.

    :returns: ignored (return ``None``).
    """


@hookspec
def otpme_auth_login_failed(ctx, options, decision):
    """Learn that the login failed (show the reason, count failures).

    Runs when the verdict is not ALLOW, including refusals in pre-auth and
    plugin errors, and when the account phase (pam_acct_mgmt) refuses with a
    DENY that is not ``USER_UNKNOWN``.  It cannot change the outcome; an
    exception here is logged and ignored.

    :param decision: the :class:`~otpme_auth.results.Decision` that decided
        (its ``plugin``, ``reason`` and ``user_message``).
    :returns: ignored (return ``None``).
    """


# ---------------------------------------------------------------------------
# The rest of the PAM surface
# ---------------------------------------------------------------------------


@hookspec
def otpme_auth_setcred(ctx, options, action):
    """pam_sm_setcred: establish or remove credentials (tickets, agent keys).

    :param action: ``"establish"``, ``"delete"``, ``"reinitialize"`` or ``"refresh"``.
    :returns: ignored.  Raising makes pam_setcred fail with PAM_CRED_ERR.
    """


@hookspec
def otpme_auth_check_account(ctx, options):
    """pam_sm_acct_mgmt: may this user's session be opened now?

    Runs for whichever module authenticated the user (ours, an ssh key,
    pam_unix), in a fresh PAM call: nothing of the authentication is on ``ctx``.

    :returns: ``None`` (nothing against it); a DENY Decision to refuse
        (PAM_PERM_DENIED, or its ``pam_code``: ``ACCT_EXPIRED``, or
        ``USER_UNKNOWN`` for "not a user I know", which the stack may ignore);
        UNAVAILABLE when the check could not be made (no server); ALLOW to
        stand in for checks that were unavailable (the offline cache); ABSTAIN
        when the stand-in has nothing of this user.  A refusal wins.  An
        unavailable check: an ALLOW stands in; else an ABSTAIN or USER_UNKNOWN
        gives PAM_USER_UNKNOWN; else it fails closed (PAM_AUTHINFO_UNAVAIL).
        With no plugin implementing it the module answers PAM_IGNORE.
    """


@hookspec
def otpme_auth_open_session(ctx, options):
    """pam_sm_open_session: the session starts (mount shares, create the home).

    Runs in line order.  :returns: ignored.  Raising makes the call fail
    with PAM_SESSION_ERR.
    """


@hookspec
def otpme_auth_close_session(ctx, options):
    """pam_sm_close_session: the session ends (unmount, stop the agent).

    Runs in reverse line order, so what was set up last is torn down first.
    Every plugin is called even if one raises; the call then fails with
    PAM_SESSION_ERR.  :returns: ignored.
    """


def _collect():
    hooks = {}
    for name, value in globals().items():
        if name.startswith("otpme_auth_") and hasattr(value, "otpme_auth_spec"):
            code = value.__code__
            hooks[name] = code.co_varnames[:code.co_argcount]
    return hooks


#: hook name -> the argument names a hookimpl may ask for.
HOOKS = _collect()
