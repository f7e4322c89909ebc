"""The PAM line: tokens, typed options, which plugins run, and every error."""

import types

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otpme_auth import ConfigError, choice, flag, hookimpl, integer, octal_mode, path, seconds, text
from otpme_auth.options import CORE_OPTIONS, Token, resolve, split_line
from otpme_auth.registry import StaticRegistry


def plugin(name, options=(), verify=True):
    mod = types.ModuleType(name)

    @hookimpl
    def otpme_auth_declare_options():
        return list(options)
    mod.otpme_auth_declare_options = otpme_auth_declare_options
    if verify:
        @hookimpl
        def otpme_auth_verify(ctx):
            raise AssertionError("not called in these tests")
        mod.otpme_auth_verify = otpme_auth_verify
    return mod


GREET = plugin("greet", [flag("hello", enables=True), seconds("wait", 2),
                         flag("shout"), text("mode", "plain")], verify=False)
HOME = plugin("home", [flag("make_home", enables=True), path("skel", "/etc/skel"),
                       octal_mode("umask", 0o022), flag("shout")], verify=False)
CHECK = plugin("check", [integer("tries", 3, minimum=1, maximum=10),
                         choice("level", ["low", "high"], "low")])


def parse(line, plugins=None, defaults=()):
    plugins = plugins or {"greet": GREET, "home": HOME, "check": CHECK}
    reg = StaticRegistry(plugins)
    args = split_line(line) if isinstance(line, str) else line
    return resolve(args, reg.installed(), reg.options_of, defaults)


def error_of(line, **kw):
    with pytest.raises(ConfigError) as info:
        parse(line, **kw)
    message = str(info.value)
    assert "\n" not in message  # one line in the log
    return message


# -- tokenising like libpam ------------------------------------------------

@pytest.mark.parametrize("line, args", [
    ("a b=c  d\te\nf", ["a", "b=c", "d", "e", "f"]),
    ("[authtok_prompt=Your code: ] x", ["authtok_prompt=Your code: ", "x"]),
    ("[cmsg=%l - Challenge: %3c] [rmsg=Response: ]", ["cmsg=%l - Challenge: %3c", "rmsg=Response: "]),
    (r"[a=x\]y] z", ["a=x]y", "z"]),
    ("[a=b", ["a=b"]),
    ("[]", [""]),
    ("", []),
])
def test_split_line_matches_libpam(line, args):
    assert split_line(line) == args


@given(st.text())
def test_split_line_never_fails(line):
    words = split_line(line)
    assert all(isinstance(w, str) for w in words)


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="]\\"), min_size=1)))
def test_bracketed_words_survive(words):
    assert split_line(" ".join("[%s]" % w for w in words)) == words


# -- enabling ----------------------------------------------------------------

def test_plugin_enabled_by_name_in_line_order():
    line = parse("check greet")
    assert line.plugin_names == ["check", "greet"]
    assert line.enabled_by == {"check": "check", "greet": "greet"}


def test_plugin_enabled_by_its_enabling_option():
    line = parse("check hello")
    assert line.plugin_names == ["check", "greet"]
    assert line.enabled_by["greet"] == "hello"


def test_installed_plugin_not_named_is_not_enabled():
    assert parse("check").plugin_names == ["check"]


def test_default_verifier_only_when_no_verifier_named():
    assert parse("hello", defaults=("check",)).plugin_names == ["check", "greet"]
    assert parse("check hello", defaults=("greet",)).plugin_names == ["check", "greet"]


def test_missing_default_verifier_is_not_an_error_here():
    assert parse("hello", defaults=("online",)).plugin_names == ["greet"]


# -- typed views -------------------------------------------------------------

def test_options_are_typed_with_defaults_and_origins():
    line = parse("check tries=5 hello wait=0.5 [mode=very loud]")
    views = dict(line.plugins)
    assert views["check"].tries == 5 and views["check"].level == "low"
    assert views["greet"].wait == 0.5 and views["greet"]["mode"] == "very loud"
    assert views["check"].origin("tries") == "tries=5"
    assert views["check"].origin("level") == "default"
    assert views["check"].given("tries") and not views["check"].given("level")
    assert line.core.debug is False


def test_views_are_frozen():
    view = dict(parse("check").plugins)["check"]
    with pytest.raises(AttributeError):
        view.tries = 9
    with pytest.raises(AttributeError):
        view.nonexistent


def test_qualified_option_disambiguates():
    line = parse("hello make_home greet.shout")
    views = dict(line.plugins)
    assert views["greet"].shout is True and views["home"].shout is False


def test_core_options():
    line = parse("check debug try_first_pass [authtok_prompt=Code: ] core.nullok")
    assert line.core.debug and line.core.try_first_pass and line.core.nullok
    assert line.core.authtok_prompt == "Code: "


def test_octal_mode():
    assert dict(parse("make_home umask=0077").plugins)["home"].umask == 0o077


# -- errors: one line naming the option --------------------------------------

@pytest.mark.parametrize("line, words", [
    ("check bogus", ["bogus"]),
    ("check bogus=1", ["bogus"]),
    ("check wait=3", ["wait", "greet", "hello"]),          # option of a plugin not enabled
    ("hello make_home shout", ["shout", "greet.shout", "home.shout"]),  # ambiguous
    ("check tries=0", ["tries", "at least 1"]),
    ("check tries=11", ["tries", "at most 10"]),
    ("check tries=three", ["tries", "whole number"]),
    ("check level=medium", ["level", "low|high"]),
    ("hello wait=-1", ["wait"]),
    ("hello wait=1e9", ["wait"]),
    ("make_home umask=0999", ["umask", "octal"]),
    ("make_home skel=relative/path", ["skel", "absolute"]),
    ("check debug=1", ["debug", "flag"]),
    ("check hello=yes", ["hello", "flag"]),
    ("check tries", ["tries", "needs a value"]),
    ("check tries=2 tries=3", ["tries", "twice"]),
    ("check try_first_pass use_first_pass", ["try_first_pass", "use_first_pass"]),
    ("check greet.hello nope.x", ["nope"]),
    ("check greet.wait=3", ["greet", "not enabled"]),
    ("check check.nothing=1", ["nothing"]),
    ("check core.nothing", ["nothing"]),
    ("check Bad-Name", ["Bad-Name"]),
    ("check =x", ["'=x'"]),
])
def test_bad_lines_name_the_option(line, words):
    message = error_of(line)
    for word in words:
        assert word in message


def test_value_in_error_is_truncated():
    message = error_of("check level=" + "x" * 500)
    assert len(message) < 200


def test_plugin_may_not_declare_core_option():
    bad = plugin("bad", [flag("debug")])
    with pytest.raises(ConfigError, match="core"):
        parse("bad", plugins={"bad": bad})


def test_two_plugins_with_same_enabling_option():
    a = plugin("a", [flag("go", enables=True)], verify=False)
    b = plugin("b", [flag("go", enables=True)], verify=False)
    assert "a.go" in error_of("go", plugins={"a": a, "b": b})
    assert parse("a.go", plugins={"a": a, "b": b}).plugin_names == ["a"]


def test_broken_installed_plugin_fails_when_enabled_only():
    from otpme_auth.registry import PluginInfo
    installed = {"ok": PluginInfo("ok", "x", hooks=("otpme_auth_verify",)),
                 "broken": PluginInfo("broken", "y", error="ImportError: no module z")}
    assert resolve(["ok"], installed, lambda n: []).plugin_names == ["ok"]
    with pytest.raises(ConfigError, match="broken.*ImportError"):
        resolve(["broken"], installed, lambda n: [])


def test_token_parts():
    tok = Token("greet.wait=3=4", 1)
    assert (tok.qualifier, tok.name, tok.value, tok.key) == ("greet", "wait", "3=4", "greet.wait")


def test_core_options_documented():
    for opt in CORE_OPTIONS:
        assert opt.help, opt.name


# -- fuzz: any line gives a config or a ConfigError, nothing else --------------

WORDS = st.sampled_from(["check", "greet", "home", "hello", "make_home", "tries", "wait",
                         "level", "debug", "shout", "greet.shout", "core.debug", "nope.x",
                         "try_first_pass", "use_first_pass", "umask", "skel", "mode"])
VALUES = st.one_of(st.none(), st.text(max_size=12), st.sampled_from(["3", "0.5", "0600", "high", "/x"]))


@settings(max_examples=400)
@given(st.lists(st.tuples(WORDS, VALUES), max_size=8))
def test_fuzz_structured_lines(pairs):
    args = [w if v is None else "%s=%s" % (w, v) for w, v in pairs]
    try:
        line = parse(args)
    except ConfigError as exc:
        assert "\n" not in str(exc)
        return
    assert set(line.plugin_names) <= {"check", "greet", "home"}


@settings(max_examples=300)
@given(st.text(max_size=80))
def test_fuzz_raw_text(line):
    try:
        parse(line)
    except ConfigError:
        pass


# -- the default verifier and gates (docs/options.md, "Which plugins run") ----------

def _verifier_with_option(calls):
    from otpme_auth import allow
    from otpme_auth.testing import make_plugin
    return make_plugin("remote", options=[integer("remote_timeout", 3)],
                       otpme_auth_verify=lambda ctx: calls.append("verify") or allow(),
                       otpme_auth_setcred=lambda ctx: calls.append("setcred"),
                       otpme_auth_open_session=lambda ctx: calls.append("open"))


def test_every_pam_function_resolves_a_line_with_the_default_verifier_alike():
    """sshd calls setcred, account and session on the line it authenticated with: an
    option of the default verifier must be valid for all of them."""
    from otpme_auth.login import FUNCTIONS
    from otpme_auth.testing import run_login
    calls = []
    plugins = {"remote": _verifier_with_option(calls)}
    for function in FUNCTIONS:
        result = run_login(plugins, "remote_timeout=5", function=function, answers=["pw"],
                           default_verifiers=("remote",))
        assert result.code in ("SUCCESS", "IGNORE"), (function, result.code, result.log)
    assert calls == ["verify", "setcred", "open"]
    assert run_login(plugins, "remote_timeout=5", function="setcred").code == "SERVICE_ERR"


def test_a_gate_line_never_grants_and_refuses_in_pre_auth():
    from otpme_auth import LoginRefused
    from otpme_auth.testing import make_plugin, run_login

    def pre_auth(ctx):
        if ctx.rhost != "10.1.2.3":
            raise LoginRefused("%s is not allowed" % ctx.rhost, "Not from there.")
    gate = make_plugin("rhost_gate", options=[flag("rhost_gate_on", enables=True)],
                       otpme_auth_pre_auth=pre_auth)
    calls = []
    plugins = {"rhost_gate": gate, "remote": _verifier_with_option(calls)}
    ok = run_login(plugins, "gate rhost_gate_on", rhost="10.1.2.3", default_verifiers=("remote",))
    assert ok.code == "IGNORE" and not calls  # no default verifier, nothing granted
    assert ok.prompts == []
    refused = run_login(plugins, "gate rhost_gate_on", rhost="192.0.2.1")
    assert refused.code == "AUTH_ERR"
    assert any("192.0.2.1 is not allowed" in line for line in refused.log)
    both = run_login(plugins, "gate rhost_gate_on remote")
    assert both.code == "SERVICE_ERR"
    assert any("gate: this line runs no verifier, but remote is one" in line for line in both.log)


def test_a_line_without_a_verifier_by_accident_is_still_an_error():
    from otpme_auth.testing import make_plugin, run_login
    home = make_plugin("home", options=[flag("create_home", enables=True)],
                       otpme_auth_post_login=lambda ctx: None)
    result = run_login({"home": home}, "create_home")
    assert result.code == "SERVICE_ERR"
    assert any("enables no verifier" in line and "gate" in line for line in result.log)
    assert not any("online" in line for line in result.log)  # the core names no plugin
