"""greeting: the texts, the options, show_errors, and message_timeout's bounds."""

import os
import time
import types

import pytest

import otpme_auth_greeting as greeting
from otpme_auth import LoginRefused, allow, deny, hookimpl, unavailable
from otpme_auth.conversation import ScriptedConversation
from otpme_auth.keys import GREETING
from otpme_auth.testing import options_for

USER = "alice"
ONLINE = "Welcome, alice. You are logged in online."
OFFLINE = ("Welcome, alice. You are logged in offline, with cached credentials: changes to your "
           "account on the server are not seen until you log in online again.")


class Verifier:
    """A primary verifier that answers what it is told; optionally stashes a server greeting."""

    def __init__(self, answer, greeting_text=None, message=None):
        self.answer = answer
        self.greeting_text = greeting_text
        self.message = message

    @hookimpl
    def otpme_auth_verify(self, ctx):
        if self.greeting_text is not None:
            ctx.stash[GREETING] = self.greeting_text
        if self.message:
            ctx.tell_user(self.message)
        return self.answer()


class Fallback:
    """The offline cache stand-in: allows in place of the unavailable primary."""

    @hookimpl
    def otpme_auth_verify_fallback(self, ctx, unavailable):
        return allow("cached credentials match", covers=unavailable)


def login(run_login, args, verifier, extra=None, **kw):
    """A login in a graphical greeter (PAM_TTY ":0") unless ``tty`` says otherwise."""
    plugins = {"v": verifier, "greeting": greeting}
    plugins.update(extra or {})
    kw.setdefault("tty", ":0")
    return run_login(plugins, "v " + args, user=kw.pop("user", USER), **kw)


@pytest.fixture
def sleeps(monkeypatch):
    """Record greeting's sleeps instead of sleeping; its clock moves on by what it slept."""
    calls = []
    fake = types.SimpleNamespace(monotonic=lambda: time.monotonic() + sum(calls),
                                 sleep=calls.append)
    monkeypatch.setattr(greeting, "time", fake)
    return calls


# -- options --------------------------------------------------------------

def test_options_and_defaults():
    opts = options_for(greeting, "", name="greeting")
    assert (opts.online_greeting, opts.offline_greeting, opts.show_errors) == (False, False, False)
    assert opts.message_timeout == 2
    declared = {o.name: o for o in greeting.otpme_auth_declare_options()}
    assert {n for n, o in declared.items() if o.enables} == {
        "online_greeting", "offline_greeting", "show_errors"}
    assert not declared["message_timeout"].enables


@pytest.mark.parametrize("bad", ["-1", "abc", "61", "1e3"])
def test_bad_message_timeout_fails_closed(run_login, bad):
    result = login(run_login, "online_greeting message_timeout=%s" % bad, Verifier(allow))
    assert result.code == "SERVICE_ERR"
    assert any("message_timeout" in line for line in result.log)
    assert result.shown == []


def test_not_enabled_never_runs(run_login):
    result = run_login({"v": Verifier(allow), "greeting": greeting}, "v", user=USER)
    assert result.ok and result.shown == []
    assert not result.called("otpme_auth_post_login", "greeting")


# -- greetings ------------------------------------------------------------

def test_online_default_text(run_login, sleeps):
    result = login(run_login, "online_greeting", Verifier(allow))
    assert result.ok
    assert result.transcript == [("info", ONLINE)]
    assert len(sleeps) == 1 and 1.9 < sleeps[0] <= 2


def test_offline_default_text(run_login, sleeps):
    result = login(run_login, "offline_greeting cache", Verifier(unavailable),
                   {"cache": Fallback()})
    assert result.ok and result.ctx.offline
    assert result.transcript == [("info", OFFLINE)]


def test_online_greeting_only_greets_online(run_login, sleeps):
    result = login(run_login, "online_greeting cache", Verifier(unavailable), {"cache": Fallback()})
    assert result.ok and result.ctx.offline
    assert result.shown == [] and sleeps == []


def test_offline_greeting_only_greets_offline(run_login, sleeps):
    result = login(run_login, "offline_greeting", Verifier(allow))
    assert result.ok and not result.ctx.offline
    assert result.shown == [] and sleeps == []


def test_both_greetings(run_login, sleeps):
    online = login(run_login, "online_greeting offline_greeting", Verifier(allow))
    offline = login(run_login, "online_greeting offline_greeting cache", Verifier(unavailable),
                    {"cache": Fallback()})
    assert online.shown == [ONLINE] and offline.shown == [OFFLINE]


def test_server_text_wins(run_login, sleeps):
    text = "Good morning Alice, your token expires in 3 days."
    result = login(run_login, "online_greeting", Verifier(allow, greeting_text=text))
    assert result.shown == [text]


def test_server_text_offline(run_login, sleeps):
    result = login(run_login, "offline_greeting cache", Verifier(unavailable, greeting_text="Hi!"),
                   {"cache": Fallback()})
    assert result.shown == ["Hi!"]


def test_empty_server_text_falls_back_to_default(run_login, sleeps):
    result = login(run_login, "online_greeting", Verifier(allow, greeting_text="  "))
    assert result.shown == [ONLINE]


def test_control_characters_never_reach_the_terminal(run_login, sleeps):
    result = login(run_login, "online_greeting",
                   Verifier(allow, greeting_text="Hi\x1b[2J there\r\nline two\x07"))
    assert result.shown == ["Hi there\nline two"]
    named = login(run_login, "online_greeting", Verifier(allow), user="bob\x1b]0;x\x07")
    assert named.shown == ["Welcome, bob. You are logged in online."]


def test_long_server_text_is_cut(run_login, sleeps):
    result = login(run_login, "online_greeting", Verifier(allow, greeting_text="x" * 5000))
    assert len(result.shown[0]) == greeting.MAX_CHARS and result.shown[0].endswith("...")


def test_no_greeting_on_failure(run_login, sleeps):
    result = login(run_login, "online_greeting offline_greeting",
                   Verifier(lambda: deny("wrong password", user_message="Wrong password.")))
    assert result.code == "AUTH_ERR"
    assert result.shown == [] and sleeps == []


# -- show_errors ----------------------------------------------------------

def test_show_errors_shows_user_message_never_reason(run_login, sleeps):
    result = login(run_login, "show_errors",
                   Verifier(lambda: deny("token 7 of alice: counter out of window",
                                         user_message="Wrong one-time code.")))
    assert result.code == "AUTH_ERR"
    assert result.transcript == [("error", "Wrong one-time code.")]
    assert not any("counter" in text for text in result.shown)
    assert len(sleeps) == 1


def test_show_errors_includes_queued_messages_once(run_login, sleeps):
    result = login(run_login, "show_errors",
                   Verifier(lambda: deny("internal detail", user_message="Wrong password."),
                            message="Your account is locked after 2 more failures."))
    assert result.transcript == [
        ("error", "Wrong password.\nYour account is locked after 2 more failures.")]
    assert len(sleeps) == 1


def test_show_errors_queued_message_without_user_message(run_login, sleeps):
    result = login(run_login, "show_errors",
                   Verifier(lambda: deny("internal detail"), message="Server says no."))
    assert result.shown == ["Server says no."]


def test_show_errors_duplicate_messages_shown_once(run_login, sleeps):
    result = login(run_login, "show_errors",
                   Verifier(lambda: deny("x", user_message="Wrong password."),
                            message="Wrong password."))
    assert result.shown == ["Wrong password."]


def test_show_errors_nothing_without_user_message(run_login, sleeps):
    result = login(run_login, "show_errors", Verifier(lambda: deny("secret internal reason")))
    assert result.code == "AUTH_ERR"
    assert result.shown == [] and sleeps == []


def test_show_errors_refusal_in_pre_auth(run_login, sleeps):
    class Gate:
        @hookimpl
        def otpme_auth_pre_auth(self, ctx):
            raise LoginRefused("alice is on deny list /etc/x", user_message="Logins are closed.")
    result = login(run_login, "closed show_errors", Verifier(allow), {"closed": Gate()})
    assert result.code == "AUTH_ERR"
    assert result.shown == ["Logins are closed."]


def test_plugin_error_shows_nothing(run_login, sleeps):
    class Broken:
        @hookimpl
        def otpme_auth_verify(self, ctx):
            raise RuntimeError("db password is hunter2")
    result = run_login({"b": Broken(), "greeting": greeting}, "b show_errors", user=USER)
    assert result.code == "SERVICE_ERR"
    assert result.shown == [] and sleeps == []


def test_no_error_shown_without_show_errors(run_login, sleeps):
    result = login(run_login, "online_greeting offline_greeting",
                   Verifier(lambda: deny("reason", user_message="Wrong password."),
                            message="queued"))
    assert result.code == "AUTH_ERR"
    assert result.shown == [] and sleeps == []


def test_greeting_that_cannot_be_shown_does_not_fail_the_login(make_context):
    class Deaf(ScriptedConversation):
        def _send(self, style, text):
            from otpme_auth import ConversationError
            raise ConversationError("the application's conversation failed")
    ctx = make_context()
    ctx.conversation = Deaf()
    opts = options_for(greeting, "online_greeting message_timeout=5", name="greeting")
    started = time.monotonic()
    greeting.otpme_auth_post_login(ctx, opts)
    assert time.monotonic() - started < 0.5  # nothing shown: no wait
    assert any("could not show the greeting" in line for _, line in ctx.log.records)


# -- message_timeout ------------------------------------------------------

def test_message_timeout_real_bounds(run_login):
    started = time.monotonic()
    result = login(run_login, "online_greeting message_timeout=0.3", Verifier(allow))
    elapsed = time.monotonic() - started
    assert result.ok and result.shown == [ONLINE]
    assert 0.3 <= elapsed < 0.3 + 0.5


def test_message_timeout_zero_never_sleeps(run_login, sleeps):
    started = time.monotonic()
    result = login(run_login, "online_greeting show_errors message_timeout=0", Verifier(allow))
    assert result.shown == [ONLINE]
    assert sleeps == [] and time.monotonic() - started < 0.5


def test_message_timeout_zero_on_failure(run_login, sleeps):
    result = login(run_login, "show_errors message_timeout=0",
                   Verifier(lambda: deny("r", user_message="Wrong password.")))
    assert result.shown == ["Wrong password."] and sleeps == []


def test_nothing_shown_nothing_waited(run_login):
    started = time.monotonic()
    result = login(run_login, "show_errors message_timeout=5", Verifier(allow))
    assert result.ok and result.shown == []
    assert time.monotonic() - started < 1


def test_two_messages_wait_once(run_login):
    """A greeting, then a later post-login failure with show_errors: one wait in all."""
    class Boom:
        @hookimpl
        def otpme_auth_post_login(self, ctx):
            ctx.tell_user("Your home directory could not be created.")
            raise RuntimeError("mkdir failed")
    started = time.monotonic()
    result = login(run_login, "online_greeting show_errors message_timeout=0.3 boom",
                   Verifier(allow), {"boom": Boom()})
    elapsed = time.monotonic() - started
    assert result.code == "SERVICE_ERR"
    assert result.transcript == [("info", ONLINE),
                                 ("error", "Your home directory could not be created.")]
    assert 0.3 <= elapsed < 0.3 + 0.25


def test_two_messages_one_sleep_call(make_context, sleeps):
    ctx = make_context(tty=":0")
    opts = options_for(greeting, "online_greeting show_errors message_timeout=1", name="greeting")
    greeting.otpme_auth_post_login(ctx, opts)
    ctx.tell_user("Later failure.")
    greeting.otpme_auth_login_failed(ctx, opts, deny("x"))
    assert ctx.conversation.shown == [ONLINE, "Later failure."]
    assert len(sleeps) == 1 and 0.9 < sleeps[0] <= 1


def test_slow_conversation_counts_against_the_timeout(make_context):
    class Slow(ScriptedConversation):
        def _send(self, style, text):
            time.sleep(0.2)
            return super()._send(style, text)
    ctx = make_context(tty=":0")
    ctx.conversation = Slow()
    opts = options_for(greeting, "online_greeting message_timeout=0.3", name="greeting")
    started = time.monotonic()
    greeting.otpme_auth_post_login(ctx, opts)
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 0.3 + 0.15  # not 0.2 + 0.3


def test_conversation_slower_than_timeout_adds_no_wait(make_context, sleeps):
    class Slower(ScriptedConversation):
        def _send(self, style, text):
            time.sleep(0.15)
            return super()._send(style, text)
    ctx = make_context(tty=":0")
    ctx.conversation = Slower()
    opts = options_for(greeting, "online_greeting message_timeout=0.1", name="greeting")
    greeting.otpme_auth_post_login(ctx, opts)
    assert ctx.conversation.shown == [ONLINE] and sleeps == []


def test_silent_conversation_no_wait(make_context, sleeps):
    # pam_entry's conversation drops messages under PAM_SILENT and says so in .silent
    ctx = make_context(tty=":0")
    ctx.conversation.silent = True
    opts = options_for(greeting, "online_greeting message_timeout=2", name="greeting")
    greeting.otpme_auth_post_login(ctx, opts)
    assert sleeps == []


# -- through real libpam --------------------------------------------------

@pytest.mark.pam
def test_greeting_through_libpam(pam_harness, tmp_path):
    from otpme_auth_passfile import CHEAPEST, hash_line
    passfile = tmp_path / "passwd"
    passfile.write_text(hash_line("alice", "s3cret-pw", **CHEAPEST) + "\n")
    os.chmod(passfile, 0o600)
    pam_harness.service("greet", pam_harness.line(
        "passfile passfile_path=%s online_greeting show_errors message_timeout=0.2 debug"
        % passfile))
    started = time.monotonic()
    ok = pam_harness.run("greet", "alice", answers=["s3cret-pw"], items={"tty": ":0"})
    elapsed = time.monotonic() - started
    assert ok.ok, (ok.output, ok.log)
    assert ONLINE in ok.output
    assert elapsed >= 0.2
    bad = pam_harness.run("greet", "alice", answers=["bad-Guess-42"])
    assert bad.code == "AUTH_ERR"
    assert "Wrong password." in bad.output and ONLINE not in bad.output
    assert not any("s3cret-pw" in line or "bad-Guess-42" in line for line in ok.log + bad.log)


# -- message_timeout waits only where a message would vanish (issue 9 point 4) --

@pytest.mark.parametrize("items", [{"tty": ":0"}, {"tty": ":1.0"}, {"xdisplay": ":0"},
                                   {"tty": "tty7", "xdisplay": "localhost:10.0"}])
def test_graphical_applications_wait(run_login, sleeps, items):
    result = login(run_login, "online_greeting", Verifier(allow), **dict({"tty": None}, **items))
    assert result.ok and len(result.shown) == 1
    assert len(sleeps) == 1 and 1.9 < sleeps[0] <= 2


@pytest.mark.parametrize("tty", [None, "ssh", "pts/3", "/dev/pts/0", "tty1", "sudo"])
def test_terminal_applications_never_wait(run_login, sleeps, tty):
    result = login(run_login, "online_greeting show_errors message_timeout=30",
                   Verifier(allow), tty=tty)
    assert result.ok and len(result.shown) == 1
    assert sleeps == []
    failed = login(run_login, "show_errors message_timeout=30", Verifier(deny, message="nope"),
                   tty=tty)
    assert failed.shown and sleeps == []
