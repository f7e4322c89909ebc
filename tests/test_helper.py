"""The root helper's pieces: the protocol (strict, fuzzed), whose credentials it checks
(peer credentials, never the request), its throttle, its socket, and the stand-in."""

import json
import os
import pwd
import socket
import stat
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otpme_auth import PASSWORD, allow, deny, unavailable
from otpme_auth.context import Secret
from otpme_auth.helper import client, protocol, service
from otpme_auth.helper.protocol import (
    ProtocolError, encode_reply, encode_request, parse_reply, parse_request,
)
from otpme_auth.login import run
from otpme_auth.conversation import ScriptedConversation
from otpme_auth.log import Log
from otpme_auth.registry import StaticRegistry
from otpme_auth.testing import make_plugin

ME = pwd.getpwuid(os.geteuid()).pw_name


# --------------------------------------------------------------------------
# The protocol
# --------------------------------------------------------------------------

@given(st.binary(max_size=5000))
def test_any_bytes_are_a_request_or_a_protocol_error(data):
    try:
        request = parse_request(data)
    except ProtocolError as exc:
        assert "\n" not in str(exc)
    else:
        assert isinstance(request.password, Secret)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=8)


@given(st.dictionaries(st.sampled_from(["v", "user", "service", "password", "extra"]),
                       json_values, max_size=5))
def test_json_objects_are_parsed_strictly(value):
    data = json.dumps(value).encode()
    ok = (set(value) == {"v", "user", "service", "password"} and type(value["v"]) is int
          and value["v"] == 1 and isinstance(value["user"], str)
          and isinstance(value["service"], str) and isinstance(value["password"], str))
    try:
        parse_request(data)
    except ProtocolError:
        return
    assert ok   # anything accepted has exactly the keys and types


@given(st.text(min_size=1, max_size=40).filter(lambda u: protocol._valid_user(u) and "\0" not in u),
       st.text(alphabet="abcdefghij-._", min_size=1, max_size=20),
       st.text(max_size=300).filter(lambda p: "\0" not in p))
def test_request_round_trip(user, service_name, password):
    request = parse_request(encode_request(user, service_name, password))
    assert (request.user, request.service) == (user, service_name)
    assert request.password.reveal() == password
    assert repr(request) == "<Request user=%r service=%r>" % (user, service_name)  # no password


@pytest.mark.parametrize("data, why", [
    (b'{"v":1,"user":"a","service":"s","password":"p","password":"q"}', "twice"),
    (b'{"v":true,"user":"a","service":"s","password":"p"}', "v must be"),
    (b'{"v":2,"user":"a","service":"s","password":"p"}', "v must be"),
    (b'{"v":1,"user":"a","service":"s"}', "keys must be"),
    (b'{"v":1,"user":"a","service":"s","password":"p","x":1}', "keys must be"),
    (b'{"v":1,"user":"../root","service":"s","password":"p"}', "user"),
    (b'{"v":1,"user":"a b","service":"s","password":"p"}', "user"),
    (b'{"v":1,"user":"","service":"s","password":"p"}', "user"),
    (b'{"v":1,"user":"a","service":"s s","password":"p"}', "service"),
    (b'{"v":1,"user":"a","service":"s","password":"p\\u0000"}', "NUL"),
    (b'{"v":1,"user":"a","service":"s","password":1}', "password"),
    (b'{"v":NaN,"user":"a","service":"s","password":"p"}', "NaN"),
    (b'{"v":1,"user":"a","service":"s","password":"p"} {}', "JSON"),
    (b'[1]', "object"),
    (b'\xff', "UTF-8"),
    (b'{"v":1,"user":"a","service":"s","password":"%s"}' % (b"x" * 5000), "longer"),
])
def test_bad_requests_name_what_is_wrong(data, why):
    with pytest.raises(ProtocolError, match=why):
        parse_request(data)


def test_a_bad_password_never_reaches_the_error_text():
    with pytest.raises(ProtocolError) as info:
        parse_request(b'{"v":1,"user":"a","service":"s","password":"hunter2","x":0}')
    assert "hunter2" not in str(info.value)


@given(st.binary(max_size=400))
def test_any_bytes_are_a_reply_or_a_protocol_error(data):
    try:
        reply = parse_reply(data)
    except ProtocolError:
        return
    assert reply.result in protocol.RESULTS


@pytest.mark.parametrize("result", protocol.RESULTS)
def test_reply_round_trip_holds_nothing_else(result):
    data = encode_reply(result, offline=True, retry_after=7)
    assert set(json.loads(data)) == {"v", "result", "offline", "retry_after"}
    reply = parse_reply(data)
    assert (reply.result, reply.offline, reply.retry_after) == (result, True, 7)
    with pytest.raises(ProtocolError):
        parse_reply(data.replace(b'"offline":true', b'"offline":1'))


# --------------------------------------------------------------------------
# The service: whose credentials, the throttle
# --------------------------------------------------------------------------

class Checker:
    """A verifier plugin standing in for online: counts the checks it makes."""

    def __init__(self, password="right", answer=None):
        self.calls = 0
        self.lock = threading.Lock()
        self.password = password
        self.answer = answer

    def plugin(self):
        def collect(ctx):
            ctx.ask_authtok("Password: ")

        def verify(ctx):
            with self.lock:
                self.calls += 1
            if self.answer is not None:
                return self.answer
            return allow("ok") if ctx.credentials[PASSWORD].reveal() == self.password \
                else deny("wrong")
        return make_plugin("checker", otpme_auth_collect_credentials=collect,
                           otpme_auth_verify=verify)


def helper_for(checker, **throttle):
    registry = StaticRegistry({"checker": checker.plugin()})
    return service.Helper(["checker"], throttle=service.Throttle(**throttle), registry=registry,
                          log=Log("test", to_syslog=False), cache_dir=None)


def request(user=ME, password="right"):
    return encode_request(user, "i3lock", password)


def test_own_credentials_are_checked():
    checker = Checker()
    helper = helper_for(checker)
    assert parse_reply(helper.answer(os.geteuid(), request())).result == "ok"
    assert parse_reply(helper.answer(os.geteuid(), request(password="no"))).result == "denied"
    assert checker.calls == 2


def test_another_users_credentials_are_never_checked():
    checker = Checker()
    helper = helper_for(checker)
    nobody = pwd.getpwnam("nobody").pw_uid
    assert parse_reply(helper.answer(nobody, request(user=ME))).result == "refused"
    assert parse_reply(helper.answer(os.geteuid(), request(user="nobody"))).result == "refused"
    assert parse_reply(helper.answer(4_000_000, request(user=ME))).result == "refused"  # no user
    assert checker.calls == 0
    assert any("asked about" in line and "refused" in line for _, line in helper.log.records)


@given(st.binary(max_size=600))
def test_the_service_answers_any_bytes_with_a_valid_reply(data):
    checker = Checker()
    reply = parse_reply(helper_for(checker).answer(os.geteuid(), data))
    assert reply.result in ("refused", "ok", "denied")


def test_unavailable_and_error_do_not_count_as_failures():
    checker = Checker(answer=unavailable("no server"))
    helper = helper_for(checker, free=1)
    for _ in range(5):
        assert parse_reply(helper.answer(os.geteuid(), request())).result == "unavailable"
    assert checker.calls == 5


def test_throttle_counts_before_the_check_and_recovers():
    now = [1000.0]
    throttle = service.Throttle(free=3, base=5, cap=900, clock=lambda: now[0])
    assert [throttle.begin("a") for _ in range(3)] == [0, 0, 0]
    assert throttle.begin("a") == 5          # 3 failures counted: wait 5 s
    assert throttle.begin("b") == 0          # per user
    now[0] += 5
    assert throttle.begin("a") == 0          # the 4th attempt, after the wait
    assert throttle.begin("a") == 10         # doubled
    now[0] += 10
    throttle.succeeded("a")
    assert throttle.begin("a") == 0


def test_forty_parallel_requests_check_only_the_free_ones():
    checker = Checker()
    helper = helper_for(checker, free=3, base=600)
    barrier = threading.Barrier(40)
    results = []

    def attempt(i):
        barrier.wait()
        results.append(parse_reply(helper.answer(os.geteuid(), request(password="g%d" % i))))
    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.result for r in results) == ["denied"] * 3 + ["throttled"] * 37
    assert checker.calls == 3
    assert all(r.retry_after > 0 for r in results if r.result == "throttled")
    assert parse_reply(helper.answer(os.geteuid(), request())).result == "throttled"


def test_the_password_is_never_logged():
    checker = Checker(password="s3cret-pw")
    helper = helper_for(checker)
    helper.answer(os.geteuid(), request(password="s3cret-pw"))
    helper.answer(os.geteuid(), request(password="s3cret-wrong"))
    assert not any("s3cret" in line for _, line in helper.log.records)


# --------------------------------------------------------------------------
# The socket: permissions, peer credentials
# --------------------------------------------------------------------------

def test_socket_is_0666_in_a_root_directory(tmp_path):
    path = str(tmp_path / "run" / "helper.sock")
    sock = service.listen_socket(path)
    try:
        st_sock = os.stat(path)
        assert stat.S_ISSOCK(st_sock.st_mode) and stat.S_IMODE(st_sock.st_mode) == 0o666
        st_dir = os.stat(os.path.dirname(path))
        assert st_dir.st_uid == os.geteuid() and not st_dir.st_mode & 0o022
    finally:
        sock.close()


def test_a_directory_others_can_write_is_refused(tmp_path):
    directory = tmp_path / "run"
    directory.mkdir()
    os.chmod(directory, 0o777)
    with pytest.raises(SystemExit, match="writable by no one else"):
        service.listen_socket(str(directory / "helper.sock"))


def test_peer_credentials_come_from_the_kernel():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b:
        assert service.peer_uid(a) == os.geteuid()


def test_a_served_connection_is_answered_by_peer_uid(tmp_path):
    checker = Checker()
    helper = helper_for(checker)
    path = str(tmp_path / "run" / "helper.sock")
    sock = service.listen_socket(path)
    thread = threading.Thread(target=helper.serve, args=(sock,), daemon=True)
    thread.start()
    try:
        ctx = _ctx()
        decision = client.ask(ctx, path, Secret("right"))
        assert decision.verdict.name == "ALLOW"
        decision = client.ask(ctx, path, Secret("wrong"))
        assert decision.verdict.name == "DENY" and not decision.final
    finally:
        helper.stop()
        thread.join(5)
        sock.close()


# --------------------------------------------------------------------------
# The stand-in: what each reply means for the login
# --------------------------------------------------------------------------

def _ctx(user=ME):
    from otpme_auth.context import LoginContext
    from otpme_auth.options import CORE, CORE_OPTIONS, default_view
    return LoginContext(user, "i3lock", default_view(CORE, CORE_OPTIONS), ScriptedConversation(),
                        Log("t", to_syslog=False))


def _canned(tmp_path, reply):
    """A socket that answers every request with ``reply``."""
    path = str(tmp_path / "canned.sock")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(path)
    sock.listen(4)

    def serve():
        conn, _ = sock.accept()
        with conn:
            conn.recv(5000)
            conn.sendall(reply)
        sock.close()
    threading.Thread(target=serve, daemon=True).start()
    return path


@pytest.mark.parametrize("reply, verdict, final, text", [
    (encode_reply("ok"), "ALLOW", False, "online"),
    (encode_reply("ok", offline=True), "ALLOW", False, "offline cache"),
    (encode_reply("denied"), "DENY", False, "refused the credentials"),
    (encode_reply("throttled", retry_after=40), "DENY", True, "40 s to wait"),
    (encode_reply("unavailable"), "UNAVAILABLE", False, "could not check"),
    (encode_reply("refused"), "DENY", True, "only its own user's"),
    (encode_reply("error"), "DENY", True, "failed closed"),
    (b'{"v":1,"result":"ok"}', "DENY", True, "not valid"),
    (b"", "DENY", True, "not valid"),
])
def test_each_reply_is_a_decision(tmp_path, reply, verdict, final, text):
    decision = client.ask(_ctx(), _canned(tmp_path, reply), Secret("pw"))
    assert decision.verdict.name == verdict and decision.final == final
    assert text in decision.reason


def test_no_helper_is_unavailable_with_the_remedy(tmp_path):
    decision = client.ask(_ctx(), str(tmp_path / "none.sock"), Secret("pw"))
    assert decision.verdict.name == "UNAVAILABLE"
    assert "helper is not running" in decision.reason and "not a server problem" in decision.reason
    assert "systemctl enable --now otpme-auth-helper.socket" in decision.reason


def test_stand_in_replaces_only_plugins_that_need_root(monkeypatch):
    root_only = make_plugin("rootonly", otpme_auth_verify=lambda ctx: allow("x"))
    root_only.OTPME_AUTH_NEEDS_ROOT = True
    other = make_plugin("other", otpme_auth_post_login=lambda ctx: None)
    from otpme_auth.host import load_plugin
    from otpme_auth.options import OptionsView
    plugins = [load_plugin(n, o, OptionsView(n, {}, {})) for n, o in
               (("other", other), ("rootonly", root_only))]
    assert [p.name for p in client.stand_in(plugins, Log("t", to_syslog=False))] == \
        ["other", "helper"]
    assert client.stand_in(plugins[:1], Log("t", to_syslog=False)) == plugins[:1]


def test_login_as_a_user_goes_through_the_helper(monkeypatch, tmp_path):
    """run() as a process that is not root: the plugin that needs root is not called."""
    called = []

    def verify(ctx):
        called.append(True)
        return allow("x")
    root_only = make_plugin("rootonly", otpme_auth_verify=verify)
    root_only.OTPME_AUTH_NEEDS_ROOT = True
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    outcome = run("authenticate", ["rootonly", "helper_socket=%s" % (tmp_path / "none.sock")],
                  ME, "i3lock", ScriptedConversation(["pw"]),
                  registry=StaticRegistry({"rootonly": root_only}), log=Log("t", to_syslog=False))
    assert outcome.code == "AUTHINFO_UNAVAIL" and not called
    assert any("helper is not running" in line for _, line in outcome.log.records)


def test_one_user_cannot_take_every_connection(tmp_path):
    checker = Checker()
    helper = helper_for(checker)
    helper.max_per_uid = 2
    path = str(tmp_path / "run" / "helper.sock")
    sock = service.listen_socket(path)
    thread = threading.Thread(target=helper.serve, args=(sock,), daemon=True)
    thread.start()
    held = []
    try:
        for _ in range(2):   # connected, sending nothing yet
            conn = socket.socket(socket.AF_UNIX)
            conn.connect(path)
            held.append(conn)
        import time
        deadline = time.monotonic() + 10
        while helper._in_flight.get(os.geteuid(), 0) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        decision = client.ask(_ctx(), path, Secret("right"))
        assert decision.verdict.name == "DENY" and "throttles" in decision.reason, decision.reason
        assert checker.calls == 0
        for conn in held:
            conn.sendall(request())
            conn.shutdown(socket.SHUT_WR)
            assert parse_reply(conn.recv(300)).result == "ok"
    finally:
        for conn in held:
            conn.close()
        helper.stop()
        thread.join(5)
        sock.close()


def test_one_uid_cannot_hold_the_connections_of_other_users(tmp_path):
    """Connections over a uid's share must not hold the service's slots: another user's
    unlock is still answered (it was "unavailable": one local user locked every screen)."""
    import shutil
    import tempfile
    import time
    checker = Checker()
    helper = helper_for(checker)
    helper.max_per_uid = 2
    helper._connections = threading.BoundedSemaphore(4)
    top = tempfile.mkdtemp(dir="/tmp")    # reachable by the other user
    os.chmod(top, 0o755)
    path = os.path.join(top, "run", "helper.sock")
    sock = service.listen_socket(path)
    thread = threading.Thread(target=helper.serve, args=(sock,), daemon=True)
    thread.start()
    held = []
    try:
        for _ in range(4):   # one uid: its share, and more, connected and sending nothing
            conn = socket.socket(socket.AF_UNIX)
            conn.connect(path)
            held.append(conn)
        deadline = time.monotonic() + 10
        while helper._in_flight.get(os.geteuid(), 0) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.3)
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:   # another user asks about itself
            try:
                os.close(rfd)
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
                import pwd
                other = socket.socket(socket.AF_UNIX)
                other.settimeout(10)
                other.connect(path)
                try:   # a service that answered at once may have closed already
                    other.sendall(encode_request(pwd.getpwuid(65534).pw_name, "i3lock", "right"))
                    other.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                os.write(wfd, other.recv(300))
            finally:
                os._exit(0)
        os.close(wfd)
        os.waitpid(pid, 0)
        with os.fdopen(rfd, "rb") as f:
            reply = f.read()
        assert parse_reply(reply).result == "ok"
    finally:
        for conn in held:
            conn.close()
        helper.stop()
        thread.join(5)
        sock.close()
        shutil.rmtree(top, ignore_errors=True)


def test_a_slow_sender_is_cut_off_after_the_read_timeout_in_total(tmp_path):
    """A byte every 0.2 s keeps each recv() short: the timeout bounds the whole request."""
    import time
    checker = Checker()
    helper = helper_for(checker)
    helper.read_timeout = 1.0
    path = str(tmp_path / "run" / "helper.sock")
    sock = service.listen_socket(path)
    thread = threading.Thread(target=helper.serve, args=(sock,), daemon=True)
    thread.start()
    conn = socket.socket(socket.AF_UNIX)
    try:
        conn.connect(path)
        started, closed = time.monotonic(), False
        for byte in request()[:40]:
            try:
                conn.sendall(bytes([byte]))
            except OSError:
                closed = True
                break
            time.sleep(0.2)
            if time.monotonic() - started > 6:
                break
        if not closed:
            conn.settimeout(3)
            try:
                closed = conn.recv(100) == b""
            except OSError:
                closed = True
        assert closed and time.monotonic() - started < 6
        assert checker.calls == 0
    finally:
        conn.close()
        helper.stop()
        thread.join(5)
