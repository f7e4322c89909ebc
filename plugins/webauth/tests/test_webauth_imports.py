"""A line without webauth imports no Kerberos binding; a webauth line imports it only to call."""

from otpme_auth.testing.imports import HEAVY, heavy, login_imports

KERBEROS = ("gssapi", "defusedxml", "otpme_auth_webauth")


def test_a_line_without_webauth_imports_no_kerberos(tmp_path):
    _, modules = login_imports(tmp_path / "probe", ["passfile", "passfile_path=/nonexistent"])
    assert heavy(modules, KERBEROS) == [], heavy(modules, KERBEROS)


def test_the_webauth_login_path_before_the_call(tmp_path):
    # host/command missing: the login stops in pre_auth, before any Kerberos is needed
    code, modules = login_imports(tmp_path / "probe", ["webauth", "host=localhost"])
    assert code == "SERVICE_ERR"
    assert "otpme_auth_webauth" in modules
    bad = heavy(modules, HEAVY + ("gssapi", "defusedxml", "otpme_auth_webauth.remctl"))
    assert bad == [], bad
