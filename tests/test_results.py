"""The rule that combines verifier answers (otpme_auth.results docstring)."""

import pytest

from otpme_auth.errors import PluginError

from otpme_auth.results import (
    Decision, Verdict, abstain, allow, as_decision, combine, deny, pam_code_for, unavailable,
)

A, D, U, X = Verdict.ALLOW, Verdict.DENY, Verdict.UNAVAILABLE, Verdict.ABSTAIN


def named(decision, name):
    decision.plugin = name
    return decision


def primaries(*verdicts):
    return [named(Decision(v), "p%d" % i) for i, v in enumerate(verdicts)]


@pytest.mark.parametrize("verdicts, expected", [
    ((A,), A), ((A, A), A), ((D,), D), ((A, D), D), ((D, A), D), ((U, D), D),
    ((X,), X), ((X, X), X), ((A, X), A), ((U,), U), ((A, U), U), ((X, U), U),
])
def test_primary_table(verdicts, expected):
    assert combine(primaries(*verdicts))[0] is expected


def test_deny_wins_and_fallback_is_not_asked():
    asked = []
    verdict, deciding, used = combine(primaries(A, D, U), lambda m: asked.append(m) or [])
    assert verdict is D and not asked and not used
    assert [d.plugin for d in deciding] == ["p1"]


def test_fallback_not_asked_when_primaries_decided():
    asked = []
    assert combine(primaries(A), lambda m: asked.append(m) or [])[0] is A
    assert combine(primaries(X), lambda m: asked.append(m) or [])[0] is X
    assert not asked


def test_fallback_must_cover_every_unavailable_primary():
    prim = primaries(U, U)
    half = lambda missing: [named(allow(covers=("p0",)), "offline")]  # noqa: E731
    full = lambda missing: [named(allow(covers=("p0", "p1")), "offline")]  # noqa: E731
    assert combine(prim, half)[0] is U
    verdict, deciding, used = combine(prim, full)
    assert verdict is A and used and [d.plugin for d in deciding] == ["offline"]


def test_fallback_gets_the_unavailable_names():
    seen = []
    combine(primaries(A, U), lambda missing: seen.append(missing) or [])
    assert seen == [("p1",)]


def test_fallback_allow_without_covers_does_not_count():
    assert combine(primaries(U), lambda m: [named(allow(), "f")])[0] is U


def test_fallback_deny_denies_even_with_another_fallback_allow():
    fb = lambda m: [named(allow(covers=m), "f1"), named(deny("tampered cache"), "f2")]  # noqa: E731
    assert combine(primaries(U), fb)[0] is D


def test_fallback_only_abstains():
    assert combine(primaries(U), lambda m: [named(abstain(), "f")])[0] is U


@pytest.mark.parametrize("bad", [None, True, False, 0, "ALLOW", object()])
def test_anything_but_a_verdict_is_a_bug(bad):
    with pytest.raises(PluginError, match="plugin p: .*Verdict or Decision"):
        as_decision(bad, "p")


def test_pam_codes():
    assert pam_code_for(A) == "SUCCESS"
    assert pam_code_for(D) == "AUTH_ERR"
    assert pam_code_for(D, [deny("x", pam_code="USER_UNKNOWN")]) == "USER_UNKNOWN"
    assert pam_code_for(U) == "AUTHINFO_UNAVAIL"
    assert pam_code_for(X) == "IGNORE"


def test_refinement_cannot_turn_a_deny_into_success():
    with pytest.raises(ValueError):
        deny("x", pam_code="SUCCESS")
    with pytest.raises(ValueError):
        Decision(A, pam_code="IGNORE")


def test_helpers():
    assert unavailable("down").verdict is U
    assert abstain().verdict is X
    assert "ALLOW" in repr(named(allow("ok"), "p"))
