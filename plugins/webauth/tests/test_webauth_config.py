"""krb5.conf [appdefaults] (found and read as MIT krb5 does) merged with the PAM line."""

import os

import pytest
from hypothesis import given, settings as hsettings, strategies as st

import otpme_auth_webauth as plugin
from otpme_auth import ConfigError
from otpme_auth.options import OptionsView
from otpme_auth_webauth import krb5conf


def view(**given):
    values = {o.name: given.get(o.name, o.default) for o in plugin.otpme_auth_declare_options()}
    origins = {n: ("%s=%s" % (n, given[n]) if n in given else "default") for n in values}
    return OptionsView("webauth", values, origins)


def conf(tmp_path, text, name="krb5.conf"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_subsection_wins_over_top_level_and_first_value_wins(tmp_path):
    a = conf(tmp_path, "[libdefaults]\n default_realm = X\n[appdefaults]\n host = top\n port = 1\n"
                       " pam-webauth-otp = {\n  host = sub\n  host = second\n }\n"
                       " other-app = {\n  command = not-ours\n }\n", "a.conf")
    b = conf(tmp_path, "[appdefaults]\n port = 2\n command = \"web kdc\"\n", "b.conf")
    values = krb5conf.appdefaults([a, b, str(tmp_path / "missing.conf")])
    assert values["host"][0] == "sub" and values["port"][0] == "1"
    assert values["command"][0] == "web kdc" and values["command"][1].endswith("b.conf line 3")


def test_includes(tmp_path):
    d = tmp_path / "conf.d"
    d.mkdir()
    (d / "webauth.conf").write_text("[appdefaults]\n pam-webauth-otp = {\n  timeout = 5\n }\n")
    (d / "skip.me~").write_text("garbage that is never read")
    main = conf(tmp_path, "includedir %s\n[libdefaults]\n default_realm = X\n" % d)
    assert krb5conf.appdefaults([main])["timeout"][0] == "5"


@pytest.mark.parametrize("text, why", [
    ("[appdefaults]\n host\n", "not 'name = value'"),
    ("host = x\n", "outside any [section]"),
    ("[appdefaults\n", "bad section header"),
    ("[appdefaults]\n pam-webauth-otp = {\n host = x\n", "never closed"),
    ("[appdefaults]\n }\n", "no open {"),
    ("[appdefaults]\n host = \"x\n", "unterminated"),
])
def test_syntax_errors_name_the_file_and_line(tmp_path, text, why):
    path = conf(tmp_path, text)
    with pytest.raises(krb5conf.Krb5ConfError) as info:
        krb5conf.appdefaults([path])
    assert why in str(info.value) and path in str(info.value)


def test_krb5_config_is_honoured_but_not_when_setuid(tmp_path, monkeypatch):
    assert krb5conf.files({"KRB5_CONFIG": "/a:/b"}) == ["/a", "/b"]
    assert krb5conf.files({}) == ["/etc/krb5.conf"]
    monkeypatch.setattr(krb5conf, "secure_context", lambda: True)
    assert krb5conf.files({"KRB5_CONFIG": "/a"}) == ["/etc/krb5.conf"]


def test_this_process_is_not_a_secure_context():
    assert krb5conf.secure_context() is (os.getuid() != os.geteuid())


def test_line_wins_then_krb5_conf_then_defaults():
    krb = {"host": ("krbhost", "f line 2"), "command": ("webkdc", "f line 3"), "port": ("4444", "f line 4")}
    s = plugin.settings(view(host="linehost"), krb)
    assert (s.host, s.command, s.port, s.timeout, s.keytab, s.principal) == (
        "linehost", "webkdc", 4444, 30.0, "/etc/krb5.keytab", None)
    assert s.origins["host"] == "the PAM line" and s.origins["port"] == "f line 4"


@pytest.mark.parametrize("name, raw, why", [
    ("port", "http", "must be a whole number"), ("port", "70000", "at most 65535"),
    ("timeout", "soon", "number of seconds"), ("keytab", "relative.keytab", "absolute path"),
    ("host", "", "must not be empty"),
])
def test_bad_krb5_conf_values_are_clear_errors(name, raw, why):
    krb = {"host": ("h", "f line 1"), "command": ("c", "f line 2"), name: (raw, "f line 9")}
    with pytest.raises(ConfigError) as info:
        plugin.settings(view(), krb)
    assert "bad value for %s in krb5.conf [appdefaults] (f line 9)" % name in str(info.value)
    assert why in str(info.value)


@pytest.mark.parametrize("missing", ["host", "command"])
def test_required(missing):
    krb = {k: ("x", "f") for k in ("host", "command") if k != missing}
    with pytest.raises(ConfigError, match="webauth needs %s=" % missing):
        plugin.settings(view(), krb)


def test_zero_timeout_is_refused():
    with pytest.raises(ConfigError, match="more than 0"):
        plugin.settings(view(timeout=0.0), {"host": ("h", "f"), "command": ("c", "f")})


@hsettings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_fuzz_any_text_parses_or_gives_a_clear_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("k") / "krb5.conf"
    path.write_text(text)
    try:
        values = krb5conf.appdefaults([str(path)])
    except krb5conf.Krb5ConfError as exc:
        assert str(path) in str(exc) or "includes" in str(exc)
        return
    assert all(isinstance(v, str) for v, _ in values.values())


def test_a_missing_gssapi_is_a_configuration_error(run_login, monkeypatch, tmp_path):
    import sys
    monkeypatch.setitem(sys.modules, "gssapi", None)   # import gssapi -> ImportError
    monkeypatch.setenv("KRB5_CONFIG", str(tmp_path / "none.conf"))
    result = run_login({"webauth": plugin}, "webauth command=webkdc host=localhost port=9",
                       user="alice", answers=["314159"])
    assert result.code == "SERVICE_ERR", result.log
    assert any("gssapi cannot be imported" in line for line in result.log), result.log
