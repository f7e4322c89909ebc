"""Verifier answers, the rule that combines them, and the PAM return codes.

Every verifier answers with one of four verdicts.  The host combines them by
one rule, stated here and enforced in :func:`combine`:

1. Verifiers that ABSTAIN do not count.
2. Any DENY denies the login, whatever any other verifier said: a credential
   that was recognised and rejected is never outvoted.
3. If every counting primary verifier said ALLOW, the login is allowed.
4. If some said UNAVAILABLE (and none DENY), the fallback verifiers (for
   example the offline cache) are asked.  They are asked only then: never
   after a DENY, never when the primaries already decided.  The login is
   allowed only if no fallback denies and the fallbacks that allow together
   *cover* every primary that was unavailable (``Decision.covers``).
5. If nobody counted (all abstained), the result is ABSTAIN (PAM_IGNORE).
6. Anything else is UNAVAILABLE (PAM_AUTHINFO_UNAVAIL).
"""

# Linux-PAM return codes (security/_pam_types.h).  The PAM boundary looks the
# names up on pam_python's handle; the numbers serve tests and the CLI.
PAM_CODES = {
    "SUCCESS": 0,
    "SERVICE_ERR": 3,
    "SYSTEM_ERR": 4,
    "PERM_DENIED": 6,
    "AUTH_ERR": 7,
    "CRED_INSUFFICIENT": 8,
    "AUTHINFO_UNAVAIL": 9,
    "USER_UNKNOWN": 10,
    "MAXTRIES": 11,
    "ACCT_EXPIRED": 13,
    "SESSION_ERR": 14,
    "CRED_ERR": 17,
    "CONV_ERR": 19,
    "IGNORE": 25,
    "ABORT": 26,
}


class Verdict:
    """One of ALLOW, DENY, UNAVAILABLE, ABSTAIN (compare with ``is``)."""

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return "Verdict." + self.name

    def __reduce__(self):
        return (getattr, (Verdict, self.name))


Verdict.ALLOW = Verdict("ALLOW")
Verdict.DENY = Verdict("DENY")
Verdict.UNAVAILABLE = Verdict("UNAVAILABLE")
Verdict.ABSTAIN = Verdict("ABSTAIN")
VERDICTS = (Verdict.ALLOW, Verdict.DENY, Verdict.UNAVAILABLE, Verdict.ABSTAIN)


class Decision:
    """A verdict with its reasons.

    :param reason: for the log (no secrets).
    :param user_message: may be shown to the user when ``show_errors`` is on.
    :param covers: for a fallback's ALLOW, the primary verifiers it stands in for.
    :param pam_code: a more specific PAM code for a DENY (USER_UNKNOWN,
        MAXTRIES, PERM_DENIED, AUTH_ERR) or an ABSTAIN (IGNORE, SUCCESS is
        never accepted here).
    :param final: for a DENY: asking the user again cannot help (a spent
        one-time code, a locked account), so ``try_first_pass`` must not
        retry with a prompt.
    """

    __slots__ = ("verdict", "reason", "user_message", "covers", "plugin", "pam_code", "final")

    def __init__(self, verdict, reason="", user_message=None, covers=(), pam_code=None,
                 final=False):
        if verdict not in VERDICTS:
            raise TypeError("Decision needs a Verdict, got %r" % (verdict,))
        if pam_code is not None and pam_code not in _REFINEMENTS.get(verdict.name, ()):
            raise ValueError("pam_code %r does not refine %s" % (pam_code, verdict.name))
        self.verdict = verdict
        self.reason = reason
        self.user_message = user_message
        self.covers = tuple(covers)
        self.plugin = None  # set by the host: who answered
        self.pam_code = pam_code
        self.final = final

    def __repr__(self):
        who = " by %s" % self.plugin if self.plugin else ""
        return "<Decision %s%s: %s>" % (self.verdict.name, who, self.reason)


_REFINEMENTS = {
    "DENY": ("AUTH_ERR", "USER_UNKNOWN", "MAXTRIES", "PERM_DENIED", "CRED_INSUFFICIENT",
             "ACCT_EXPIRED"),
    "UNAVAILABLE": ("AUTHINFO_UNAVAIL",),
    "ABSTAIN": ("IGNORE",),
    "ALLOW": (),
}


def allow(reason="", covers=()):
    """An ALLOW.  A fallback verifier names the primaries it ``covers``."""
    return Decision(Verdict.ALLOW, reason, covers=covers)


def deny(reason="", user_message=None, pam_code=None, final=False):
    """A DENY: the credential was recognised and is wrong, or policy refuses.

    ``final=True``: prompting again cannot help; try_first_pass does not retry.
    """
    return Decision(Verdict.DENY, reason, user_message, pam_code=pam_code, final=final)


def unavailable(reason="", user_message=None):
    """UNAVAILABLE: the verifier could not decide (server unreachable, no data)."""
    return Decision(Verdict.UNAVAILABLE, reason, user_message)


def abstain(reason=""):
    """ABSTAIN: this verifier has nothing to say about this login."""
    return Decision(Verdict.ABSTAIN, reason)


def as_decision(answer, plugin):
    """Normalise a verifier's return value; anything but a Verdict/Decision is a bug."""
    if isinstance(answer, Verdict):
        answer = Decision(answer)
    elif not isinstance(answer, Decision):
        from .errors import PluginError
        raise PluginError(plugin, "a verify hook must return a Verdict or Decision, not %s"
                          % type(answer).__name__)
    answer.plugin = plugin
    return answer


def combine(primary, fallback=None):
    """Combine decisions by the rule in this module's docstring.

    :param primary: decisions of the primary verifiers.
    :param fallback: a callable taking the tuple of unavailable primary plugin
        names and returning the fallbacks' decisions; called only when rule 4
        applies.
    :returns: ``(verdict, deciding_decisions, used_fallback)``.
    """
    counting = [d for d in primary if d.verdict is not Verdict.ABSTAIN]
    denies = [d for d in counting if d.verdict is Verdict.DENY]
    if denies:
        return Verdict.DENY, denies, False
    if not counting:
        return Verdict.ABSTAIN, list(primary), False
    missing = tuple(d.plugin for d in counting if d.verdict is Verdict.UNAVAILABLE)
    if not missing:
        return Verdict.ALLOW, counting, False
    if fallback is None:
        return Verdict.UNAVAILABLE, [d for d in counting if d.plugin in missing], False
    answers = [d for d in fallback(missing) if d.verdict is not Verdict.ABSTAIN]
    denies = [d for d in answers if d.verdict is Verdict.DENY]
    if denies:
        return Verdict.DENY, denies, True
    allows = [d for d in answers if d.verdict is Verdict.ALLOW]
    covered = set()
    for d in allows:
        covered.update(d.covers)
    if allows and covered.issuperset(missing):
        return Verdict.ALLOW, [d for d in counting if d.verdict is Verdict.ALLOW] + allows, True
    return Verdict.UNAVAILABLE, [d for d in counting if d.plugin in missing] + answers, True


def pam_code_for(verdict, decisions=()):
    """The PAM code name for a combined verdict (the one place this mapping lives)."""
    if verdict is Verdict.ALLOW:
        return "SUCCESS"
    if verdict is Verdict.ABSTAIN:
        return "IGNORE"
    if verdict is Verdict.UNAVAILABLE:
        return "AUTHINFO_UNAVAIL"
    for d in decisions:
        if d.pam_code:
            return d.pam_code
    return "AUTH_ERR"
