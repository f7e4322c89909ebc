"""Every hook, exercised through the real host (datasette-style: one test per hook).

``test_every_hook_has_a_test`` keeps it that way.
"""

import time

from otpme_auth.testing import make_plugin

from otpme_auth import (
    PASSWORD, LoginRefused, allow, deny, flag, integer, unavailable,
)
from otpme_auth.hookspecs import HOOKS
from otpme_auth.testing import run_login


def recorder(name, log, verdict=None, **extra):
    """A plugin that appends (name, hook) to ``log`` for every hook it implements."""
    def rec(hook, result=None):
        def impl(ctx):
            log.append((name, hook))
            return result
        return impl
    hooks = {h: rec(h) for h in ("otpme_auth_pre_auth", "otpme_auth_collect_credentials",
                                 "otpme_auth_post_login", "otpme_auth_open_session")}
    if verdict is not None:
        hooks["otpme_auth_verify"] = rec("otpme_auth_verify", verdict)
    hooks.update(extra)
    return make_plugin(name, **hooks)


def password_checker(expected="secret"):
    return make_plugin(
        "pw",
        otpme_auth_collect_credentials=lambda ctx: ctx.ask_authtok(),
        otpme_auth_verify=lambda ctx: allow("ok") if ctx.credentials[PASSWORD].matches(expected)
        else deny("wrong password", user_message="Wrong password."))


def test_every_hook_has_a_test():
    tested = {name[len("test_hook_"):] for name in globals() if name.startswith("test_hook_")}
    assert {h[len("otpme_auth_"):] for h in HOOKS} == tested


def test_hook_declare_options():
    seen = {}
    plugin = make_plugin(
        "p", options=[flag("p_on", enables=True), integer("p_count", 3)],
        otpme_auth_verify=lambda ctx, options: seen.update(options.items()) or allow())
    assert run_login({"p": plugin}, "p_on p_count=7").ok
    assert seen == {"p_on": True, "p_count": 7}
    assert not run_login({"p": plugin}, "p p_count=x").ok


def test_hook_pre_auth():
    calls = []
    refuser = recorder("refuser", calls, otpme_auth_pre_auth=lambda ctx: deny("on the deny list"))
    verifier = recorder("v", calls, verdict=allow())
    result = run_login({"refuser": refuser, "v": verifier}, "refuser v", answers=["x"])
    assert result.code == "AUTH_ERR"
    assert result.prompts == [] and ("v", "otpme_auth_verify") not in calls
    assert any("on the deny list" in line for line in result.log)
    # None goes on
    calls.clear()
    assert run_login({"v": verifier}, "v").ok
    assert calls[0] == ("v", "otpme_auth_pre_auth")
    # an ALLOW from pre-auth is a plugin bug: fails closed
    bad = make_plugin("bad", otpme_auth_pre_auth=lambda ctx: allow(),
                      otpme_auth_verify=lambda ctx: allow())
    result = run_login({"bad": bad}, "bad")
    assert result.code == "SERVICE_ERR" and any("[bad]" in line for line in result.log)

    def refuse(ctx):
        raise LoginRefused("user is on DENY_LOGIN_USERS", "You may not log in here.")
    seen = []
    raiser = make_plugin("r", otpme_auth_pre_auth=refuse, otpme_auth_verify=lambda ctx: allow(),
                         otpme_auth_login_failed=lambda decision: seen.append(decision))
    assert run_login({"r": raiser}, "r").code == "AUTH_ERR"
    assert seen[0].user_message == "You may not log in here." and seen[0].plugin == "r"


def test_hook_collect_credentials():
    order = []
    first = make_plugin(
        "first", otpme_auth_collect_credentials=lambda ctx: order.append("ask1") or ctx.ask_authtok(),
        otpme_auth_verify=lambda ctx: order.append("verify1") or deny("wrong"))
    second = make_plugin(
        "second", otpme_auth_collect_credentials=lambda ctx: order.append("ask2")
        or ctx.ask_secret("Code: ", key=CODE),
        otpme_auth_verify=lambda ctx: order.append("verify2") or allow())
    result = run_login({"first": first, "second": second}, "second first", answers=["a", "b"])
    # all prompting before any verification, in line order, every factor asked
    assert order == ["ask2", "ask1", "verify2", "verify1"]
    assert result.prompts == ["Code: ", "Password: "]
    assert result.code == "AUTH_ERR"


def test_hook_credentials_collected():
    """After every prompt (whatever the line order), before any verifier, with the typed secret."""
    order = []

    def bring_up(ctx):
        order.append(("link", ctx.credentials[PASSWORD].matches("secret")))
    link = make_plugin("link", otpme_auth_credentials_collected=bring_up,
                       otpme_auth_collect_credentials=lambda ctx: order.append("ask-link"))
    pw = make_plugin(
        "pw", otpme_auth_collect_credentials=lambda ctx: order.append("ask") or ctx.ask_authtok(),
        otpme_auth_verify=lambda ctx: order.append("verify") or allow())
    # link is named first: its hook still runs after pw's prompt
    result = run_login({"link": link, "pw": pw}, "link pw", answers=["secret"])
    result.assert_code("SUCCESS")
    assert order == ["ask-link", "ask", ("link", True), "verify"]


from otpme_auth import Key  # noqa: E402

CODE = Key("test-code")


def test_hook_verify():
    asked = []
    a = make_plugin("a", otpme_auth_verify=lambda ctx: asked.append("a") or deny("no"))
    b = make_plugin("b", otpme_auth_verify=lambda ctx: asked.append("b") or allow())
    assert run_login({"a": a, "b": b}, "a b").code == "AUTH_ERR"
    assert asked == ["a", "b"]  # no short-circuit: both asked, deny wins
    assert run_login({"b": b}, "b").ok
    for bad in (None, True, "ALLOW"):
        p = make_plugin("p", otpme_auth_verify=(lambda value: lambda ctx: value)(bad))
        result = run_login({"p": p}, "p")
        assert result.code == "SERVICE_ERR", bad
        assert any("[p]" in line and "Verdict or Decision" in line for line in result.log)
    defaulted = make_plugin("d", otpme_auth_verify=lambda ctx, extra=1: allow())
    result = run_login({"d": defaulted}, "d")
    assert result.code == "SERVICE_ERR"
    assert any("default-valued" in line for line in result.log)
    u = make_plugin("u", otpme_auth_verify=lambda ctx: unavailable("server down"))
    assert run_login({"u": u}, "u").code == "AUTHINFO_UNAVAIL"


def test_hook_verify_fallback():
    asked = []

    def fb(ctx, unavailable):
        asked.append(unavailable)
        return allow("cache ok", covers=unavailable)
    offline = make_plugin("offline", otpme_auth_verify_fallback=fb)
    down = make_plugin("online", otpme_auth_verify=lambda ctx: unavailable("unreachable"))
    refused = make_plugin("online", otpme_auth_verify=lambda ctx: deny("wrong code"))
    up = make_plugin("online", otpme_auth_verify=lambda ctx: allow())

    result = run_login({"online": down, "offline": offline}, "online offline")
    assert result.ok and result.ctx.offline and asked == [("online",)]
    assert result.ctx.verified_by == ("offline",)
    asked.clear()
    result = run_login({"online": refused, "offline": offline}, "online offline")
    assert result.code == "AUTH_ERR" and asked == []   # never after a DENY
    result = run_login({"online": up, "offline": offline}, "online offline")
    assert result.ok and not result.ctx.offline and asked == []


def test_hook_post_login():
    ran = []
    post = make_plugin("post", otpme_auth_post_login=lambda ctx: ran.append(ctx.verified_by))
    good, bad = password_checker(), password_checker()
    assert run_login({"pw": good, "post": post}, "pw post", answers=["secret"]).ok
    assert ran == [("pw",)]
    assert not run_login({"pw": bad, "post": post}, "pw post", answers=["nope"]).ok
    assert ran == [("pw",)]  # not after a failure

    def explode(ctx):
        raise OSError("disk full")
    boom = make_plugin("boom", otpme_auth_post_login=explode)
    result = run_login({"pw": good, "boom": boom}, "pw boom", answers=["secret"])
    assert result.code == "SERVICE_ERR"   # fail closed
    assert any("[boom]" in line and "disk full" in line for line in result.log)

    def refuse(ctx):
        raise LoginRefused("home on a full disk", "Your home directory could not be created.")
    seen = []
    refuser = make_plugin("r", otpme_auth_post_login=refuse,
                          otpme_auth_login_failed=lambda decision: seen.append(decision))
    result = run_login({"pw": good, "r": refuser}, "pw r", answers=["secret"])
    assert result.code == "AUTH_ERR"
    assert seen[0].user_message == "Your home directory could not be created."


def test_hook_login_failed():
    seen = []
    watcher = make_plugin("w", otpme_auth_login_failed=lambda ctx, decision: seen.append(decision))
    result = run_login({"pw": password_checker(), "w": watcher}, "pw w", answers=["bad"])
    assert result.code == "AUTH_ERR"
    assert seen[0].plugin == "pw" and seen[0].user_message == "Wrong password."
    seen.clear()
    assert run_login({"pw": password_checker(), "w": watcher}, "pw w", answers=["secret"]).ok
    assert seen == []

    def explode(ctx, decision):
        raise RuntimeError("cannot count failures")
    broken = make_plugin("b", otpme_auth_login_failed=explode)
    result = run_login({"pw": password_checker(), "b": broken}, "pw b", answers=["bad"])
    assert result.code == "AUTH_ERR"  # unchanged, and logged
    assert any("cannot count failures" in line for line in result.log)


def test_hook_setcred():
    actions = []
    p = make_plugin("p", otpme_auth_setcred=lambda ctx, action: actions.append(action))
    for action in ("establish", "delete", "refresh", "reinitialize"):
        assert run_login({"p": p}, "p", function="setcred", action=action).ok
    assert actions == ["establish", "delete", "refresh", "reinitialize"]

    def explode(ctx, action):
        raise RuntimeError("no ticket")
    assert run_login({"p": make_plugin("p", otpme_auth_setcred=explode)}, "p",
                     function="setcred").code == "CRED_ERR"


def test_hook_check_account():
    ok = make_plugin("ok", otpme_auth_check_account=lambda ctx: None)
    no = make_plugin("no", otpme_auth_check_account=lambda ctx: deny("outside login hours"))
    none = make_plugin("none", otpme_auth_open_session=lambda ctx: None)
    assert run_login({"ok": ok}, "ok", function="acct_mgmt").code == "SUCCESS"
    result = run_login({"ok": ok, "no": no}, "ok no", function="acct_mgmt")
    assert result.code == "PERM_DENIED" and any("outside login hours" in x for x in result.log)
    assert run_login({"none": none}, "none", function="acct_mgmt").code == "IGNORE"
    # A refusal is a failed login for the plugins (a host refusal drops caches there);
    # "not a user I know" is not.
    seen = []
    watcher = make_plugin("w", otpme_auth_login_failed=lambda decision: seen.append(decision))
    assert run_login({"no": no, "w": watcher}, "no w", function="acct_mgmt").code == "PERM_DENIED"
    assert [d.reason for d in seen] == ["outside login hours"]
    stranger = make_plugin("s", otpme_auth_check_account=lambda ctx: deny(
        "not ours", pam_code="USER_UNKNOWN"))
    seen.clear()
    assert run_login({"s": stranger, "w": watcher}, "s w", function="acct_mgmt").code == \
        "USER_UNKNOWN"
    assert seen == []


def test_hook_open_session():
    order = []
    a = make_plugin("a", otpme_auth_open_session=lambda ctx: order.append("a"))
    b = make_plugin("b", otpme_auth_open_session=lambda ctx: order.append("b"))
    assert run_login({"a": a, "b": b}, "b a", function="open_session").ok
    assert order == ["b", "a"]

    def explode(ctx):
        raise PermissionError("cannot mount")
    result = run_login({"x": make_plugin("x", otpme_auth_open_session=explode)}, "x",
                       function="open_session")
    assert result.code == "SESSION_ERR"


def test_hook_close_session():
    order = []

    def explode(ctx):
        order.append("b")
        raise RuntimeError("umount busy")
    a = make_plugin("a", otpme_auth_close_session=lambda ctx: order.append("a"))
    b = make_plugin("b", otpme_auth_close_session=explode)
    c = make_plugin("c", otpme_auth_close_session=lambda ctx: order.append("c"))
    result = run_login({"a": a, "b": b, "c": c}, "a b c", function="close_session")
    assert order == ["c", "b", "a"]  # reverse order, everyone called
    assert result.code == "SESSION_ERR"


def test_trace_names_each_hook_and_plugin_without_secrets():
    # `trace` alone is enough: its lines are not hidden behind `debug`.
    result = run_login({"pw": password_checker()}, "pw trace", answers=["secret"])
    traces = [line for line in result.log if "trace:" in line]
    assert any("[pw]" in t and "otpme_auth_verify" in t and "ALLOW" in t for t in traces)
    assert not any("secret" in line for line in result.log)


def test_a_misspelt_hook_is_an_error_not_an_empty_result():
    import pytest

    from otpme_auth.host import Host
    host = Host([], log=None)
    with pytest.raises(ValueError, match="no hook named 'otpme_auth_postlogin'"):
        host.call("otpme_auth_postlogin", None)
    with pytest.raises(ValueError):
        host.implementers("otpme_auth_verifyy")
    assert not hasattr(host, "postlogin")  # the typed layer: one method per hook
    assert all(hasattr(host, h[len("otpme_auth_"):]) for h in HOOKS
               if h not in ("otpme_auth_declare_options", "otpme_auth_add_cli_commands"))


def test_cleanups_run_when_the_login_ends_between_hooks():
    """A resource opened in collect_credentials is released although verify never closes it."""
    events = []

    def collect(ctx):
        events.append("open")
        ctx.add_cleanup(lambda: events.append("first cleanup"), "conn")
        ctx.add_cleanup(lambda: 1 / 0, "conn")
        ctx.add_cleanup(lambda: events.append("last cleanup"), "conn")
        ctx.ask_authtok()

    def verify(ctx):
        raise RuntimeError("crashed before closing")
    conn = make_plugin("conn", otpme_auth_collect_credentials=collect, otpme_auth_verify=verify)
    result = run_login({"conn": conn}, "conn", answers=["pw"])
    assert result.code != "SUCCESS"
    # last added runs first; one that raises is logged and the others still run
    assert events == ["open", "last cleanup", "first cleanup"]
    assert any("cleanup" in line and "ZeroDivisionError" in line and "[conn]" in line
               for line in result.log)


def test_message_to_user_is_queued():
    p = make_plugin("p", otpme_auth_verify=lambda ctx: ctx.tell_user("Your token expires soon.")
                    or allow())
    result = run_login({"p": p}, "p")
    assert result.ctx.messages == ["Your token expires soon."]


def test_calls_are_recorded_for_plugin_authors():
    result = run_login({"pw": password_checker()}, "pw", answers=["secret"])
    assert result.called("otpme_auth_verify", "pw")
    assert not result.called("otpme_auth_verify_fallback")
    assert time.monotonic() > 0


def test_hook_add_cli_commands(capsys):
    from otpme_auth.cli import main
    from otpme_auth.registry import StaticRegistry

    def add(subparsers):
        p = subparsers.add_parser("hello", help="say hello")
        p.add_argument("who")
        p.set_defaults(run=lambda args, out: out.write("hello %s\n" % args.who) and 0)

    def broken(subparsers):
        raise RuntimeError("cannot")
    registry = StaticRegistry({
        "hi": make_plugin("hi", otpme_auth_add_cli_commands=add),
        "bad": make_plugin("bad", otpme_auth_add_cli_commands=broken),
    })
    import io
    out = io.StringIO()
    assert main(["hello", "world"], out=out, registry=registry) == 0
    assert out.getvalue() == "hello world\n"
    assert "plugin bad could not add its commands: RuntimeError: cannot" in capsys.readouterr().err


def test_a_failing_login_result_explains_itself():
    import pytest
    result = run_login({"pw": password_checker()}, "pw", answers=["nope"])
    with pytest.raises(AssertionError) as info:
        result.assert_code("SUCCESS")
    text = str(info.value)
    assert "expected PAM_SUCCESS, got PAM_AUTH_ERR" in text
    assert "prompts: ['Password: ']" in text and "pw:verify" in text
    assert "wrong password" in text  # the log line that says why
    assert "wrong password" in repr(result)  # what `assert result.ok` prints
    assert result.assert_code("AUTH_ERR") is result
