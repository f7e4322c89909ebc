"""RADIUS for the realm (issue 14, docs/radius.md): a real FreeRADIUS on loopback, written
by ``otpme-auth-server radius-config``, asking the realm's real server over rlm_rest.

radtest/radclient (PAP) and eapol_test (EAP-TTLS/PAP, the site certificate checked by
domain-suffix-match) are the NASes. The one-time code and failure-count tests mix
RADIUS with the protocol login a PAM host makes (POST /v1/auth, what the online plugin
sends), against one store.
"""

import json
import os
import re
import subprocess
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from otpme_auth.otp.hotp import hotp
from otpme_auth_server import cli
from srvkit import (Client, Radius, need_tools, ServerProc, accepted, adm_ok, b32, join, shown_jotp,
                    shown_secret)

PW = "correct horse 42"


@pytest.fixture
def radius(realm_dir, tmp_path):
    r = Radius(realm_dir, tmp_path)
    yield r
    r.stop()


def _user(realm_dir, name="alice", totp=False):
    adm_ok(realm_dir, "user", "add", name, "--no-login-token")
    adm_ok(realm_dir, "token", "add", "--type", "password", f"{name}/pass", "-", stdin=PW + "\n")
    if totp:
        out = adm_ok(realm_dir, "token", "add", "--type", "totp", f"{name}/totp", "--no-pin")
        return b32(shown_secret(out))
    return None


def _code(secret, offset=0):
    return hotp(secret, int(time.time()) // 30 + offset, digits=6)


def _client(realm_dir, name="sw1", address="127.0.0.1"):
    out = adm_ok(realm_dir, "client", "add", name, "--address", address)
    return re.search(r"shared secret .*: ([0-9a-f]{32})$", out.strip()).group(1)


def test_pap_accepted_wrong_refused_and_no_password_logged(radius, realm_dir):
    _user(realm_dir)
    secret = _client(realm_dir)
    radius.start()
    out = radius.radtest("alice", PW, secret)
    assert accepted(out), out
    out = radius.radtest("alice", "wrong password", secret)
    assert "Access-Reject" in out and "wrong credentials" in out, out
    out = radius.radtest("mallory", PW, secret)
    assert "Access-Reject" in out, out
    # The wrong shared secret: its Message-Authenticator is wrong, the packet is dropped.
    assert not accepted(radius.radtest("alice", PW, "0" * 32))
    logs = radius.fr_log() + radius.server.logtext()
    for root, _, files in os.walk(radius.work):
        for f in files:
            if f.endswith((".log", ".out")):
                with open(os.path.join(root, f), errors="replace") as fh:
                    logs += fh.read()
    assert PW not in logs and "wrong password" not in logs
    assert "host=radius:sw1" in radius.server.logtext()


def test_one_code_one_use_across_radius_and_pam(radius, realm_dir, tmp_path):
    key = _user(realm_dir, totp=True)
    secret = _client(realm_dir)
    host = join(radius.server_port, realm_dir, "h1",
                shown_jotp(adm_ok(realm_dir, "host", "add", "h1")), str(tmp_path / "h1"))
    adm_ok(realm_dir, "host", "add_token", "h1", "alice/totp")
    radius.start()
    # A code used through RADIUS is refused by the PAM host's login that follows ...
    code = _code(key)
    assert accepted(radius.radtest("alice", code, secret))
    assert "Access-Reject" in radius.radtest("alice", code, secret)       # replayed
    status, body = host.auth("alice", code)
    assert status == 200 and body["status"] == "refused", body
    # ... and one used by a PAM host first is refused through RADIUS.
    code2 = _code(key, 1)
    status, body = host.auth("alice", code2)
    assert status == 200 and body["status"] == "ok", body
    assert "Access-Reject" in radius.radtest("alice", code2, secret)
    host.close()


def test_unknown_client_refused(radius, realm_dir):
    _user(realm_dir)
    secret = _client(realm_dir)
    radius.start()
    assert accepted(radius.radtest("alice", PW, secret))
    # Deleted from the realm, FreeRADIUS not reconfigured yet: the server refuses it.
    adm_ok(realm_dir, "client", "del", "sw1")
    out = radius.radtest("alice", PW, secret)
    assert "Access-Reject" in out and "not known to the realm" in out, out
    # Reconfigured: FreeRADIUS does not answer an address that is no client.
    _client(realm_dir, "sw2", "127.0.0.2")
    radius.start()
    out = radius.radtest("alice", PW, secret)
    assert "Access-Accept" not in out and "Access-Reject" not in out, out


def test_blocked_and_disabled_users_refused(radius, realm_dir):
    _user(realm_dir)
    _user(realm_dir, "bob")
    adm_ok(realm_dir, "accessgroup", "add", "wlan")
    adm_ok(realm_dir, "accessgroup", "max_fail", "wlan", "3")
    secret = _client(realm_dir)
    adm_ok(realm_dir, "client", "access_group", "sw1", "wlan")
    radius.start()
    for _ in range(3):
        assert "Access-Reject" in radius.radtest("alice", "nope", secret)
    out = radius.radtest("alice", PW, secret)
    assert "Access-Reject" in out and "blocked" in out, out
    adm_ok(realm_dir, "user", "disable", "bob")
    out = radius.radtest("bob", PW, secret)
    assert "Access-Reject" in out and "disabled" in out, out


@pytest.mark.parametrize("workers", [2])
def test_forty_parallel_attempts(realm_dir, tmp_path, workers):
    """40 wrong passwords at once through FreeRADIUS leave the user blocked (max_fail 5:
    no more than 5 were checked); 40 copies of one code at once: one Access-Accept."""
    r = Radius(realm_dir, tmp_path, workers=workers)
    try:
        _user(realm_dir)
        key = _user(realm_dir, "carol", totp=True)
        secret = _client(realm_dir)
        adm_ok(realm_dir, "accessgroup", "max_fail", "LOGIN", "5")
        r.start()
        acc, rej, lost = r.radclient([("alice", f"wrong{i}") for i in range(40)], secret)
        assert (acc, rej, lost) == (0, 40, 0)
        out = r.radtest("alice", PW, secret)
        assert "Access-Reject" in out and "blocked" in out, out
        code = _code(key)
        acc, rej, lost = r.radclient([("carol", code)] * 40, secret)
        assert (acc, rej, lost) == (1, 39, 0)
    finally:
        r.stop()


def test_eap_ttls_pap_with_the_site_certificate(radius, realm_dir, tmp_path):
    need_tools("eapol_test")
    _user(realm_dir)
    secret = _client(realm_dir)
    radius.start()
    ca = os.path.join(radius.raddb, "certs", "ca.pem")

    def eapol(password, domain):
        conf = tmp_path / "eapol.conf"
        conf.write_text("network={\n key_mgmt=IEEE8021X\n eap=TTLS\n identity=\"alice\"\n"
                        " anonymous_identity=\"anonymous@example.org\"\n"
                        f" password=\"{password}\"\n ca_cert=\"{ca}\"\n"
                        f" domain_suffix_match=\"{domain}\"\n phase2=\"auth=PAP\"\n}}\n")
        out = subprocess.run(["eapol_test", "-c", str(conf), "-a", "127.0.0.1", "-p", str(radius.port),
                              "-s", secret, "-t", "20"], capture_output=True, text=True, timeout=60)
        return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr

    assert eapol(PW, "berlin.example.org") == "SUCCESS"
    assert eapol("wrong", "berlin.example.org") == "FAILURE"
    before = radius.server.logtext().count("login ")
    # A server that is not the site's: the supplicant stops before sending the password.
    assert eapol(PW, "other.example.org") == "FAILURE"
    assert radius.server.logtext().count("login ") == before


def test_endpoint_needs_the_radius_certificate(radius, realm_dir, tmp_path):
    _user(realm_dir)
    _client(realm_dir)
    radius.configure()
    body = {"User-Name": {"type": "string", "value": ["alice"]},
            "User-Password": {"type": "string", "value": [PW]},
            "FreeRADIUS-Client-Shortname": {"type": "string", "value": ["sw1"]}}
    anon = Client(radius.server_port, os.path.join(realm_dir, "ca.pem"))
    assert anon.post("/v1/radius/auth", body)[0] == 403
    host = join(radius.server_port, realm_dir, "h1",
                shown_jotp(adm_ok(realm_dir, "host", "add", "h1")), str(tmp_path / "h1"))
    assert host.post("/v1/radius/auth", body)[0] == 403     # a host is not FreeRADIUS
    certs = os.path.join(radius.raddb, "certs")
    fr = Client(radius.server_port, os.path.join(realm_dir, "ca.pem"), "radius:freeradius",
                os.path.join(certs, "rest.pem"), os.path.join(certs, "rest.key"))
    assert fr.post("/v1/radius/auth", body) == (200, {})
    assert fr.post("/v1/auth", {"user": "alice", "password": PW})[0] == 403  # not a host
    # radius-config again: the old certificate no longer opens the endpoint.
    radius.configure()
    fr.close()
    assert fr.post("/v1/radius/auth", body)[0] == 403
    for c in (anon, host, fr):
        c.close()


_value = st.one_of(st.none(), st.text(max_size=80), st.integers(), st.lists(st.text(max_size=70), max_size=3),
                   st.dictionaries(st.sampled_from(["type", "value", "op"]),
                                   st.one_of(st.text(max_size=70), st.lists(
                                       st.one_of(st.text(max_size=70), st.integers()), max_size=2)),
                                   max_size=3))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(
    st.binary(max_size=300),
    st.dictionaries(st.sampled_from(["User-Name", "User-Password", "FreeRADIUS-Client-Shortname",
                                     "NAS-IP-Address", "x"]), _value, max_size=5).map(
        lambda d: json.dumps(d).encode())))
def test_fuzz_endpoint_never_5xx(radius_endpoint, body):
    status, answer = radius_endpoint.raw("POST", "/v1/radius/auth", body)
    assert status in (200, 400, 401), (status, answer)


@pytest.fixture
def radius_endpoint(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    from srvkit import make_realm
    realm_dir = make_realm(d)
    _user(realm_dir)
    _client(realm_dir)
    assert cli.main(["radius-config", "--dir", realm_dir, "--out", str(d / "raddb"), "--user", ""]) == 0
    with open(os.path.join(realm_dir, "server.json")) as f:
        port = int(json.load(f)["listen"].rsplit(":", 1)[1])
    srv = ServerProc(realm_dir, port)
    certs = str(d / "raddb" / "certs")
    c = Client(port, os.path.join(realm_dir, "ca.pem"), "radius:freeradius",
               os.path.join(certs, "rest.pem"), os.path.join(certs, "rest.key"))
    yield c
    c.close()
    srv.stop()
