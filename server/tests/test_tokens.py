"""Token verification through the server: HOTP, TOTP window, HMAC-SHA1 challenge-response,
ssh signatures over a fresh single-use nonce."""

import base64
import hashlib
import hmac
import os
import time

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from otpme_auth_server import otp
from otpme_auth_server.auth import verify_ssh_signature

from srvkit import adm, adm_ok, b32, join, shown_jotp, shown_secret


def _s(b: bytes) -> bytes:
    return len(b).to_bytes(4, "big") + b


def _mpint(n: int) -> bytes:
    raw = n.to_bytes((n.bit_length() + 8) // 8, "big")
    return _s(raw)


def ssh_sign(key, data: bytes) -> str:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        blob = _s(b"ssh-ed25519") + _s(key.sign(data))
    else:
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        blob = _s(b"ecdsa-sha2-nistp256") + _s(_mpint(r) + _mpint(s))
    return base64.b64encode(blob).decode()


def ssh_pub(key) -> str:
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode()


@pytest.fixture
def host(realm_dir, server, tmp_path):
    d = realm_dir
    h = join(server.port, d, "h1", shown_jotp(adm_ok(d, "host", "add", "h1")), str(tmp_path / "h"))
    adm_ok(d, "host", "unlimit_logins", "h1")
    adm_ok(d, "user", "add", "--no-login-token", "carol")
    return h


def test_hotp_and_totp_window(realm_dir, host):
    d = realm_dir
    hs = b32(shown_secret(adm_ok(d, "token", "add", "--type", "hotp", "--no-pin", "carol/hotp")))
    assert host.auth("carol", otp.hotp(hs, 0))[1]["status"] == "ok"
    assert host.auth("carol", otp.hotp(hs, 0))[1]["reason"] == "wrong_credentials"  # used
    assert host.auth("carol", otp.hotp(hs, 5))[1]["status"] == "ok"  # look-ahead
    assert host.auth("carol", otp.hotp(hs, 3))[1]["status"] == "refused"  # behind the counter
    assert host.auth("carol", otp.hotp(hs, 40))[1]["status"] == "refused"  # beyond the window
    adm_ok(d, "token", "del", "carol/hotp")

    ts = b32(shown_secret(adm_ok(d, "token", "add", "--type", "totp", "--no-pin", "--digits", "8",
                                      "carol/totp")))
    _, pre = host.preauth("carol")
    assert pre["methods"] == [{"type": "totp", "password_required": False, "otp_len": 8,
                               "second_factor": None, "pin_required": False, "prompt": "OTP: "}]
    now = time.time()
    assert host.auth("carol", otp.totp(ts, now - 30, digits=8))[1]["status"] == "ok"  # one step back
    assert host.auth("carol", otp.totp(ts, now - 30, digits=8))[1]["status"] == "refused"
    assert host.auth("carol", otp.totp(ts, now, digits=8))[1]["status"] == "ok"
    # An older code after a newer one is refused (replay protection is monotonic).
    assert host.auth("carol", otp.totp(ts, now - 30, digits=8))[1]["status"] == "refused"
    assert host.auth("carol", otp.totp(ts, now + 300, digits=8))[1]["status"] == "refused"


def test_hmac_challenge_response(realm_dir, host):
    d = realm_dir
    secret = bytes.fromhex(shown_secret(adm_ok(d, "token", "add", "--type", "hmac", "carol/yk")))
    _, pre = host.preauth("carol")
    (m,) = pre["methods"]
    assert m["type"] == "hmac" and len(m["challenge"]) == 64
    resp = hmac.new(secret, bytes.fromhex(m["challenge"]), hashlib.sha1).hexdigest()
    body = host.auth("carol", challenge_id=m["challenge_id"], response=resp)[1]
    assert body["status"] == "ok" and body["token"] == "carol/yk"
    # Single use.
    assert host.auth("carol", challenge_id=m["challenge_id"], response=resp)[1]["reason"] == "wrong_credentials"
    # Fresh challenge each time; a wrong response consumes it too.
    _, pre2 = host.preauth("carol")
    (m2,) = pre2["methods"]
    assert m2["challenge"] != m["challenge"]
    assert host.auth("carol", challenge_id=m2["challenge_id"], response="00" * 20)[1]["status"] == "refused"
    good = hmac.new(secret, bytes.fromhex(m2["challenge"]), hashlib.sha1).hexdigest()
    assert host.auth("carol", challenge_id=m2["challenge_id"], response=good)[1]["status"] == "refused"
    # A challenge is bound to its user.
    adm_ok(d, "user", "add", "--no-login-token", "dave")
    _, pre3 = host.preauth("carol")
    (m3,) = pre3["methods"]
    good = hmac.new(secret, bytes.fromhex(m3["challenge"]), hashlib.sha1).hexdigest()
    assert host.auth("dave", challenge_id=m3["challenge_id"], response=good)[1]["status"] == "refused"


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa"])
def test_ssh_signature_over_nonce(realm_dir, host, kind):
    d = realm_dir
    key = ed25519.Ed25519PrivateKey.generate() if kind == "ed25519" else ec.generate_private_key(ec.SECP256R1())
    adm_ok(d, "token", "add", "--type", "ssh", "carol/ssh", ssh_pub(key) + " carol@laptop")
    _, pre = host.preauth("carol")
    (m,) = pre["methods"]
    assert m["type"] == "ssh" and m["public_key"] == ssh_pub(key)
    assert m["expires"] - time.time() <= 61
    sig = ssh_sign(key, bytes.fromhex(m["challenge"]))
    body = host.auth("carol", challenge_id=m["challenge_id"], response=sig)[1]
    assert body["status"] == "ok" and body["token"] == "carol/ssh"
    assert body["ssh_keys"] == [ssh_pub(key)]
    assert host.auth("carol", challenge_id=m["challenge_id"], response=sig)[1]["status"] == "refused"
    # A signature by another key is refused.
    other = ed25519.Ed25519PrivateKey.generate()
    _, pre = host.preauth("carol")
    (m,) = pre["methods"]
    bad = ssh_sign(other, bytes.fromhex(m["challenge"])) if kind == "ed25519" else ssh_sign(
        ec.generate_private_key(ec.SECP256R1()), bytes.fromhex(m["challenge"]))
    assert host.auth("carol", challenge_id=m["challenge_id"], response=bad)[1]["status"] == "refused"


def test_ssh_key_rejected_by_admin(realm_dir):
    rc, _ = adm(realm_dir, "user", "add", "--no-login-token", "erin")
    assert rc == 0
    assert adm(realm_dir, "token", "add", "--type", "ssh", "erin/ssh", "ssh-ed25519 notbase64")[0] == 2


def test_verify_ssh_signature_garbage():
    key = ed25519.Ed25519PrivateKey.generate()
    pub = ssh_pub(key)
    for junk in ("", "!!!", base64.b64encode(b"\x00\x00\x00\xffabc").decode(),
                 base64.b64encode(_s(b"ssh-rsa") + _s(b"x")).decode()):
        assert verify_ssh_signature(pub, junk, b"data") is False
    assert verify_ssh_signature(pub, ssh_sign(key, b"data"), b"data") is True


def test_hmac_slot_and_secret_from_stdin(realm_dir, host, capsys):
    """The pre-auth names the YubiKey slot; an existing secret is read from stdin, never
    taken on the command line, and not shown back."""
    d = realm_dir
    secret = bytes(range(20))
    rc, out = adm(d, "token", "add", "--type", "hmac", "--slot", "1", "carol/yk", "-",
                  stdin=secret.hex() + "\n")
    assert rc == 0 and secret.hex() not in out
    _, pre = host.preauth("carol")
    (m,) = [m for m in pre["methods"] if m["type"] == "hmac"]
    assert m["slot"] == 1
    resp = hmac.new(secret, bytes.fromhex(m["challenge"]), hashlib.sha1).hexdigest()
    assert host.auth("carol", challenge_id=m["challenge_id"], response=resp)[1]["status"] == "ok"
    # Slot 2 is the default; bad secrets and slots are clear errors.
    adm_ok(d, "token", "add", "--type", "hmac", "carol/yk2")
    for args, stdin in ((["carol/yk3", "-"], "abcd\n"), (["carol/yk3", "-"], "zz" * 20 + "\n"),
                        (["carol/yk3", secret.hex()], None)):
        capsys.readouterr()
        rc, _ = adm(d, "token", "add", "--type", "hmac", *args, stdin=stdin)
        err = capsys.readouterr().err
        assert rc != 0 and ("40 hex digits" in err or "stdin" in err), err
    rc, _ = adm(d, "token", "add", "--type", "hmac", "--slot", "3", "carol/yk3")
    assert rc != 0


class _ClosedPipe:
    """An output whose reader went away (``otpme-auth-admin ... | head`` after head exited)."""

    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        pass


def test_a_secret_that_cannot_be_shown_is_not_added(realm_dir, capsys):
    """A token's secret is shown once: if its output is lost, the token must not exist
    (and the admin is told), so no one holds a token whose secret no one saw."""
    from otpme_auth_server import admin
    adm_ok(realm_dir, "user", "add", "bob", "--no-login-token")
    rc = admin.main(["--dir", realm_dir, "token", "add", "bob/t1", "--type", "totp"],
                    out=_ClosedPipe())
    assert rc == 2
    assert "the realm was not changed" in capsys.readouterr().err
    rc, out = adm(realm_dir, "token", "show", "bob/t1")
    assert rc != 0
    # What was written is what was committed: a whole output means the token exists.
    out = adm_ok(realm_dir, "token", "add", "bob/t1", "--type", "totp")
    assert shown_secret(out) and "bob/t1" in adm_ok(realm_dir, "token", "show", "bob/t1")


def test_what_head_showed_was_added(realm_dir):
    """`otpme-auth-admin user add carol | head -1` printed 'User carol added': carol exists
    (it used to be rolled back when the rest of the output met the closed pipe)."""
    import shutil
    import subprocess
    import sys
    admin_cmd = os.path.join(os.path.dirname(sys.executable), "otpme-auth-admin")
    assert shutil.which(admin_cmd), admin_cmd
    shown = subprocess.run("%s --dir %s user add carol | head -1" % (admin_cmd, realm_dir),
                           shell=True, capture_output=True, text=True, timeout=60)
    assert "carol" in shown.stdout, shown
    assert "carol" in adm_ok(realm_dir, "user", "show", "carol")
