"""The online plugin against a real server on loopback (the kit's ``realm`` fixture)."""

import os
import socket
import ssl
import threading
import time

import pytest

import otpme_auth_online as online
from otpme_auth.keys import LOGIN_ANSWER
from otpme_auth.otp.base32 import b32decode
from otpme_auth.otp.hotp import totp

PW = "correct horse battery"


@pytest.fixture
def site(realm):
    """A started realm with alice (password token) allowed on host h1, joined."""
    realm.add_user("alice", PW, offline=True)
    jotp = realm.add_host("h1", tokens=["alice/pass"])
    realm.start()
    conf = realm.join("h1", jotp)
    return realm, "online host_config=%s" % conf


def login(run_login, line, answers, user="alice", **kw):
    return run_login({"online": online}, line, user=user, answers=answers, **kw)


def test_success_hands_the_answer_to_other_plugins(run_login, site):
    realm, line = site
    result = login(run_login, line, [PW])
    assert result.ok and result.prompts == ["Password: "]
    answer = result.ctx.stash[LOGIN_ANSWER]
    assert answer["user"] == "alice" and answer["token"] == "alice/pass"
    assert answer["offline"] and answer["offline"][0]["token"] == "alice/pass"


def test_refusal_is_a_deny_with_the_servers_message(run_login, site):
    realm, line = site
    result = login(run_login, line, ["wrong"])
    assert result.code == "AUTH_ERR"
    decision = result.ctx.decisions[0]
    assert decision.plugin == "online" and "wrong_credentials" in decision.reason
    assert decision.user_message


def test_token_not_on_this_host_is_refused(run_login, realm):
    realm.add_user("bob", PW)
    realm.start()
    conf = realm.join("h2")
    result = login(run_login, "online host_config=%s" % conf, [PW], user="bob")
    assert result.code == "AUTH_ERR"
    # To a host, a token it may not use has wrong credentials (no oracle).
    assert "wrong_credentials" in result.ctx.decisions[0].reason


def test_password_with_totp_second_factor_in_one_prompt(run_login, realm):
    secret = realm.add_user("carol", PW, second_factor="totp")
    jotp = realm.add_host("h3", tokens=["carol/pass"])
    realm.start()
    conf = realm.join("h3", jotp)
    code = totp(b32decode(secret), time.time())
    result = login(run_login, "online host_config=%s" % conf, [PW + code], user="carol")
    assert result.ok, result.log
    assert result.prompts == ["Password+OTP: "]
    # the same code again: one-time
    assert login(run_login, "online host_config=%s" % conf, [PW + code], user="carol").code == "AUTH_ERR"


def test_server_down_is_unavailable_within_connect_timeout(run_login, site):
    realm, line = site
    realm.stop()
    started = time.monotonic()
    result = login(run_login, line + " connect_timeout=1", [PW])
    assert result.code == "AUTHINFO_UNAVAIL"
    assert time.monotonic() - started < 2
    assert result.prompts == ["Password: "]  # still asked: an offline cache may need it


def test_a_server_that_never_answers(run_login, site, tmp_path):
    """TLS completes, then silence: connection_timeout holds, then UNAVAILABLE."""
    realm, line = site
    srv_dir = realm.server_dir
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(srv_dir, "server.pem"), os.path.join(srv_dir, "server.key"))
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    held = []

    def serve():
        try:
            conn, _ = listener.accept()
            held.append(ctx.wrap_socket(conn, server_side=True))
            time.sleep(10)
        except OSError:
            pass
    threading.Thread(target=serve, daemon=True).start()
    conf = line.split("host_config=")[1]
    text = open(conf).read().replace(realm.server, "127.0.0.1:%d" % port)
    open(conf, "w").write(text)
    started = time.monotonic()
    result = login(run_login, line + " connection_timeout=0.5", [PW])
    elapsed = time.monotonic() - started
    listener.close()
    assert result.code == "AUTHINFO_UNAVAIL"
    assert 0.5 <= elapsed < 3


def test_failover_to_the_second_server(run_login, realm):
    realm.add_user("alice", PW)
    jotp = realm.add_host("h1", tokens=["alice/pass"])
    realm.start()
    dead = "127.0.0.1:%d" % _closed_port()
    conf = realm.join("h1", jotp, servers=[realm.server])
    text = open(conf).read().replace("servers = " + realm.server,
                                     "servers = %s, %s" % (dead, realm.server))
    open(conf, "w").write(text)
    result = login(run_login, "online connect_timeout=1 host_config=%s" % conf, [PW])
    assert result.ok, result.log


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_deny_and_valid_login_users_refuse_before_any_prompt(run_login, site):
    realm, line = site
    conf = line.split("host_config=")[1]
    with open(conf, "a") as fh:
        fh.write("DENY_LOGIN_USERS = mallory\nVALID_LOGIN_USERS = alice, bob\n")
    for user in ("mallory", "eve"):
        result = login(run_login, line, [PW], user=user)
        assert result.code == "AUTH_ERR" and result.prompts == []
    assert login(run_login, line, [PW]).ok


def test_never_joined_is_unavailable_and_says_why(run_login, tmp_path):
    result = login(run_login, "online host_config=%s/none.conf" % tmp_path, [PW])
    assert result.code == "AUTHINFO_UNAVAIL"
    assert any("otpme-auth join" in line for line in result.log)


def test_untrusted_host_config_fails_closed(run_login, site):
    realm, line = site
    os.chmod(line.split("host_config=")[1], 0o666)
    result = login(run_login, line, [PW])
    assert result.code == "SERVICE_ERR"
    assert any("mode 0666" in line for line in result.log)


def test_a_line_without_a_verifier_logs_in_online(run_login, site):
    """online is what install-pam writes as the entry script's default verifier."""
    from otpme_auth.install import DEFAULT_VERIFIERS
    realm, line = site
    result = run_login({"online": online}, line.replace("online ", ""), user="alice", answers=[PW],
                       default_verifiers=DEFAULT_VERIFIERS)
    assert result.ok and result.ctx.verified_by == ("online",)


def test_send_password_false_sends_nothing(run_login, site):
    realm, line = site
    result = login(run_login, line + " send_password=false", [PW])
    assert result.code == "AUTH_ERR"
    assert "send_password=false" in result.ctx.decisions[0].reason
    log = realm.server_log()
    assert "login ok" not in log and "login refused" not in log  # /v1/auth never called
    assert PW not in log


def test_no_secret_in_logs(run_login, site):
    realm, line = site
    result = login(run_login, line + " debug trace", [PW])
    assert result.ok
    assert not any(PW in x for x in result.log)
    assert PW not in realm.server_log()


def test_through_real_libpam(pam_harness, system_user, realm):
    user = system_user()
    realm.add_user(user, PW)
    jotp = realm.add_host("h1", tokens=["%s/pass" % user])
    realm.start()
    conf = realm.join("h1", jotp)
    pam_harness.service("login", pam_harness.line("try_first_pass host_config=%s" % conf))
    assert pam_harness.run("login", user, answers=[PW]).code == "SUCCESS"
    assert pam_harness.run("login", user, answers=["nope"]).code == "AUTH_ERR"
    realm.stop()
    assert pam_harness.run("login", user, answers=[PW]).code == "AUTHINFO_UNAVAIL"


def test_offline_first_keeps_the_server_out_of_it(run_login, site, make_plugin):
    """A plugin that answers from the cache (unlock_via_offline_token) sets OFFLINE_FIRST."""
    from otpme_auth_online.keys import OFFLINE_FIRST
    realm, line = site
    first = make_plugin("cachefirst", otpme_auth_pre_auth=lambda ctx: ctx.stash.__setitem__(
        OFFLINE_FIRST, "unlock_via_offline_token") or None)
    result = run_login({"online": online, "cachefirst": first}, line + " cachefirst",
                       user="alice", answers=[PW])
    assert result.code == "AUTHINFO_UNAVAIL"   # the server, which would accept, was not asked
    assert "not asked: unlock_via_offline_token" in result.ctx.decisions[0].reason


def test_no_tls_is_loaded_when_no_server_answers(tmp_path):
    """An offline login (every server down) pays nothing for TLS."""
    from otpme_auth.testing.imports import heavy, login_imports
    conf = tmp_path / "host.conf"
    conf.write_text("realm = r\nhost = h\nservers = 127.0.0.1:%d\nca_file = /x\ncert_file = /x\n"
                    "key_file = /x\n" % _closed_port())
    os.chmod(conf, 0o644)
    code, modules = login_imports(tmp_path / "probe", ["online", "host_config=%s" % conf,
                                                       "connect_timeout=1"])
    assert code == "AUTHINFO_UNAVAIL"
    assert heavy(modules, ("ssl", "_ssl", "json")) == []


def test_an_untrusted_server_certificate_is_unavailable(run_login, site, tmp_path):
    """A server whose certificate the pinned CA did not sign is no server of ours."""
    realm, line = site
    conf = line.split("host_config=")[1]
    other_ca = tmp_path / "other-ca.pem"
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import datetime
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not the realm")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    other_ca.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    text = open(conf).read()
    ca_line = [x for x in text.splitlines() if x.startswith("ca_file")][0]
    open(conf, "w").write(text.replace(ca_line, "ca_file = %s" % other_ca))
    result = login(run_login, line, [PW])
    assert result.code == "AUTHINFO_UNAVAIL"
    assert any("certificate not trusted" in x for x in result.log)


# -- issue 8, point 11: a kept-alive connection the server closed is not "unreachable" --

class _Closing:
    """A TLS stand-in: answers pre-auth, then closes the connection as an idle server does;
    answers /v1/auth on a new connection (with the realm's certificate)."""

    def __init__(self, realm, close_how):
        import json
        self.json = json
        self.close_how = close_how
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(os.path.join(realm.server_dir, "server.pem"),
                                 os.path.join(realm.server_dir, "server.key"))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.server = "127.0.0.1:%d" % self.listener.getsockname()[1]
        self.paths = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _answer(self, body, extra=b""):
        data = self.json.dumps(body).encode()
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(data), extra, data)

    def _serve(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            try:
                tls = self.ctx.wrap_socket(conn, server_side=True)
                request = tls.recv(65536)
                path = request.split(b" ")[1].decode()
                self.paths.append(path)
                if path == "/v1/preauth":
                    tls.sendall(self._answer({"status": "ok", "methods": [
                        {"password_required": True, "prompt": "Password: "}]},
                        b"Connection: close\r\n" if self.close_how == "header" else b""))
                    tls.close()        # as at an idle timeout (or as the header said)
                else:
                    tls.sendall(self._answer({"status": "ok", "user": "alice",
                                              "token": "alice/pass", "offline": []}))
                    tls.close()
            except (OSError, ValueError, IndexError):
                conn.close()

    def close(self):
        self.listener.close()


@pytest.mark.parametrize("close_how", ["idle", "header"])
def test_server_closing_a_kept_alive_connection_is_not_unreachable(run_login, site, close_how):
    realm, line = site
    stand_in = _Closing(realm, close_how)
    conf = line.split("host_config=")[1]
    with open(conf) as fh:
        text = fh.read().replace(realm.server, stand_in.server)
    with open(conf, "w") as fh:
        fh.write(text)
    try:
        result = login(run_login, line, [PW])
    finally:
        stand_in.close()
    assert result.ok, result.log
    assert stand_in.paths == ["/v1/preauth", "/v1/auth"]
