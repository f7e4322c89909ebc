"""Small pieces: OTP vectors, durations, login times, the secret box, file modes, the admin CLI."""

import os
import stat
import subprocess
import sys

import pytest

from otpme_auth_server import otp, realm
from otpme_auth_server.crypto import SecretBox
from otpme_auth_server.errors import InvalidValue

from srvkit import adm, adm_ok, make_realm


def test_rfc4226_and_rfc6238_vectors():
    key = b"12345678901234567890"
    assert [otp.hotp(key, i) for i in range(3)] == ["755224", "287082", "359152"]
    assert otp.totp(key, 59, digits=8) == "94287082"
    assert otp.totp(key, 1111111109, digits=8) == "07081804"
    assert otp.match_counter(key, "359152", 0, 5) == 2
    assert otp.match_counter(key, "35915", 0, 5) is None


def test_durations_and_times():
    assert realm.parse_duration("+1m") == 60
    assert realm.parse_duration("2h") == 7200
    assert realm.parse_duration("+3D") == 3 * 86400
    assert realm.parse_duration("+1W") == 7 * 86400
    for bad in ("1y", "", "+", "m", "-1m", "1.5h"):
        with pytest.raises(InvalidValue):
            realm.parse_duration(bad)
    assert realm.auto_disable_value("0") == 0
    assert realm.auto_disable_value("+1m", now=1000) == 1060
    times = realm.parse_times("Mon-Fri 07:00-19:00; sat 09:00-12:00")
    assert times == ["mon-fri 07:00-19:00", "sat 09:00-12:00"]
    assert realm.times_allow(times, 0, 7 * 60)
    assert not realm.times_allow(times, 0, 19 * 60)
    assert realm.times_allow(times, 5, 10 * 60)
    assert not realm.times_allow(times, 6, 10 * 60)
    assert realm.times_allow(["fri-mon 00:00-24:00"], 0, 0)  # wraps over the week end
    for bad in ("mon 19:00-07:00", "xyz 00:00-01:00", "mon 25:00-26:00", "monday"):
        with pytest.raises(InvalidValue):
            realm.parse_times(bad)


def test_secret_box_binds_token_name():
    box = SecretBox(os.urandom(32))
    sealed = box.seal(b"secret", "alice/totp")
    assert box.open(sealed, "alice/totp") == b"secret"
    with pytest.raises(Exception):
        box.open(sealed, "bob/totp")
    assert "secret".encode().hex() not in sealed


def test_init_file_modes_and_no_secrets_in_store(tmp_path):
    d = make_realm(tmp_path)
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    for name in ("ca.key", "server.key", "store.key", "store.sqlite3", "server.json"):
        assert stat.S_IMODE(os.stat(os.path.join(d, name)).st_mode) == 0o600, name
    adm_ok(d, "user", "add", "--no-login-token", "alice")
    out = adm_ok(d, "token", "add", "--type", "password", "alice/pw")
    pw = out.split("(shown once): ")[1].split()[0]
    out = adm_ok(d, "token", "add", "--type", "totp", "--pin-len", "12", "alice/totp")
    secret = out.split("(shown once): ")[1].split()[0]
    pin = out.split("PIN (shown once): ")[1].split()[0]
    raw = open(os.path.join(d, "store.sqlite3"), "rb").read()
    wal = os.path.join(d, "store.sqlite3-wal")
    if os.path.exists(wal):
        raw += open(wal, "rb").read()
    assert pw.encode() not in raw and secret.encode() not in raw and pin.encode() not in raw
    assert b"$argon2id$" in raw
    shown = adm_ok(d, "token", "show", "alice/totp") + adm_ok(d, "token", "show", "alice/pw")
    assert "argon2" not in shown and "secret" not in shown and pin not in shown


def test_admin_errors_are_one_line(tmp_path, capsys):
    d = make_realm(tmp_path)
    capsys.readouterr()
    cases = [
        ("user", "show", "nobody"),
        ("user", "frobnicate", "x"),
        ("token", "add", "ghost/tok", "--type", "totp"),
        ("user", "auto_disable", "ghost", "+1y"),
        ("token", "password", "alice/pw", "cleartext"),
        ("host", "add_token", "nohost", "a/b"),
        ("accessgroup", "max_fail", "LOGIN", "many"),
        ("policy", "add", "p1", "--type", "logintimes", "--times", "someday"),
        ("role", "add_role", "r1", "r2"),
    ]
    adm_ok(d, "user", "add", "--no-login-token", "alice")
    adm_ok(d, "token", "add", "--type", "password", "alice/pw")
    for args in cases:
        rc, out = adm(d, *args)
        err = capsys.readouterr().err
        assert rc == 2, args
        assert err.count("\n") == 1 and err.startswith("otpme-auth-admin: "), (args, err)
        assert "Traceback" not in err
    rc, _ = adm(d, "user", "add", "alice")
    assert rc == 2 and "exists already" in capsys.readouterr().err
    # A secret given on the command line is refused, not stored.
    rc, _ = adm(d, "token", "add", "--type", "password", "alice/pw2", "hunter2")
    assert rc == 2 and "stdin" in capsys.readouterr().err


def test_console_scripts_exit_2(tmp_path):
    r = subprocess.run([sys.executable, "-m", "otpme_auth_server.admin", "--dir", str(tmp_path / "none"),
                        "user", "show"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "server.json" in r.stderr
    r = subprocess.run([sys.executable, "-m", "otpme_auth_server.cli", "run", "--dir", str(tmp_path / "none")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_admin_usage_error_is_one_line(tmp_path, capsys):
    d = make_realm(tmp_path)
    capsys.readouterr()
    rc, _ = adm(d, "user")  # verb missing
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and err.startswith("otpme-auth-admin: ")


def test_admin_verbs_come_from_methods_or_tables_and_nothing_else():
    from otpme_auth_server.admin import FLAGS, MEMBERS, OBJECTS, USER_LISTS, Admin
    admin = Admin.__new__(Admin)  # no store needed to resolve verbs
    for obj, verb in list(FLAGS) + list(MEMBERS) + list(USER_LISTS):
        assert admin._handler(obj, verb) is not None, (obj, verb)
    for obj in OBJECTS:
        assert admin._handler(obj, "show") and admin._handler(obj, "list")
        assert admin._handler(obj, "frobnicate") is None
    assert admin._handler("run", "list") is None  # not an object: no method lookup
    assert admin._handler("p", "") is None
