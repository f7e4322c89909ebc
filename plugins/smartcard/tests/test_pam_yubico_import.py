"""Migration from pam_yubico's challenge-response state (issue 12): the file format, the
permission checks pam_yubico lacks (its issues #116, #146), and the import into the offline
cache at the next successful online login, through real libpam, a real pcscd with the
virtual YubiKey, and the real server."""

import hashlib
import hmac
import io
import os
import shutil
import tempfile

import pytest
from hypothesis import given, settings, strategies as st

from otpme_auth.cli import main
from otpme_auth_offline import pamyubico
from otpme_auth_smartcard.testing.vcard import VirtualYubiKey

PW = "correct horse battery"
SECRET = bytes(range(1, 21))
OTHER = bytes(range(101, 121))
SERIAL = 7654321
FAST_KDF = "offline_key_func=Argon2_i;min_mem:8,max_mem:8,iterations:1,threads:1"


def v2_line(secret=SECRET, challenge=None, iterations=1000, slot=2):
    challenge = challenge or os.urandom(63)
    answer = hmac.new(secret, challenge, hashlib.sha1).hexdigest()
    salt = os.urandom(32)
    hashed = hashlib.pbkdf2_hmac("sha1", answer.encode(), salt, iterations, 20).hex()
    return "v2:%s:%s:%s:%d:%d\n" % (challenge.hex(), hashed, salt.hex(), iterations, slot)


def v1_line(secret=SECRET, slot=2):
    challenge = os.urandom(63)
    return "v1:%s:%s:%d\n" % (challenge.hex(), hmac.new(secret, challenge, hashlib.sha1).hexdigest(),
                              slot)


# -- the format --------------------------------------------------------------------------

def test_parse_v1_and_v2_and_match():
    challenge = os.urandom(63)
    state = pamyubico.parse(v2_line(challenge=challenge))
    assert state["version"] == "v2" and state["slot"] == 2 and state["iterations"] == 1000
    answer = hmac.new(SECRET, challenge, hashlib.sha1).hexdigest()
    assert pamyubico.matches(state, answer)
    assert not pamyubico.matches(state, hmac.new(OTHER, challenge, hashlib.sha1).hexdigest())
    state = pamyubico.parse(v1_line(slot=1))
    assert state["version"] == "v1" and state["slot"] == 1


@pytest.mark.parametrize("bad, why", [
    ("", "neither"), ("v3:aa:%s:2" % ("a" * 40), "neither"),
    ("v1:aa:%s:3" % ("a" * 40), "slot"), ("v1:AA:%s:2" % ("a" * 40), "challenge"),
    ("v1:aa:%s:2" % ("a" * 38), "response"), ("v1:a:%s:2" % ("a" * 40), "challenge"),
    ("v2:aa:%s:bb:0:2" % ("a" * 40), "iterations"),
    ("v2:aa:%s:bb:99999999:2" % ("a" * 40), "iterations"),
    ("v2:aa:%s::1000:2" % ("a" * 40), "salt"),
])
def test_parse_refuses_with_a_reason(bad, why):
    with pytest.raises(ValueError, match=why):
        pamyubico.parse(bad)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_parse_never_raises_anything_but_value_error(text):
    try:
        pamyubico.parse(text)
    except ValueError:
        pass


# -- the permission checks ----------------------------------------------------------------

@pytest.fixture
def home(system_user):
    """A user whose home is in a root-owned 0755 directory (not under the sticky /tmp)."""
    base = tempfile.mkdtemp(prefix="otpme-pamyubico-", dir="/run")
    os.chmod(base, 0o755)
    home = os.path.join(base, "home")
    user = system_user(home=home)
    import pwd
    uid = pwd.getpwnam(user).pw_uid
    os.makedirs(os.path.join(home, ".yubico"))
    for d in (home, os.path.join(home, ".yubico")):
        os.chown(d, uid, uid)
        os.chmod(d, 0o700)
    yield user, home, uid
    shutil.rmtree(base, ignore_errors=True)


def write(path, text, uid, mode=0o600):
    with open(path, "w") as f:
        f.write(text)
    os.chown(path, uid, uid)
    os.chmod(path, mode)
    return path


def test_read_file_takes_a_proper_file_and_its_serial(home):
    user, home_dir, uid = home
    path = write(os.path.join(home_dir, ".yubico", "challenge-%d" % SERIAL), v2_line(), uid)
    state = pamyubico.read_file(path, user)
    assert state["serial"] == SERIAL
    assert pamyubico.candidates(user) == [path]


@pytest.mark.parametrize("case, message", [
    ("group_writable", "writable by group or others"),
    ("dir_world_writable", "anyone could plant a challenge file"),
    ("symlink", "symlink"),
    ("foreign_owner", "is owned by uid"),
    ("v1_readable", "in the clear"),
    ("not_regular", "not a regular file"),
    ("garbage", "not a pam_yubico challenge file"),
])
def test_read_file_refuses_what_pam_yubico_accepts(home, case, message):
    user, home_dir, uid = home
    ydir = os.path.join(home_dir, ".yubico")
    path = os.path.join(ydir, "challenge-%d" % SERIAL)
    if case == "group_writable":
        write(path, v2_line(), uid, 0o620)
    elif case == "dir_world_writable":
        write(path, v2_line(), uid)
        os.chmod(ydir, 0o1777)
    elif case == "symlink":
        target = write(os.path.join(home_dir, "elsewhere"), v2_line(), uid)
        os.symlink(target, path)
    elif case == "foreign_owner":
        write(path, v2_line(), uid + 1)
    elif case == "v1_readable":
        write(path, v1_line(), uid, 0o644)
    elif case == "not_regular":
        os.mkfifo(path)
        os.chown(path, uid, uid)
    else:
        write(path, "\x00\x01 not a state", uid)
    with pytest.raises(pamyubico.NotImportable, match=message):
        pamyubico.read_file(path, user)


def test_command_refuses_without_a_file_and_needs_one_choice(home, tmp_path, capsys):
    user, home_dir, uid = home
    args = ["import-pam-yubico", user, "--cache-dir", str(tmp_path / "c")]
    assert main(args, out=io.StringIO()) != 0
    assert "no pam_yubico state for %s" % user in capsys.readouterr().err
    for serial in (1, 2):
        write(os.path.join(home_dir, ".yubico", "challenge-%d" % serial), v2_line(), uid)
    assert main(args, out=io.StringIO()) != 0
    assert "choose one with --file" in capsys.readouterr().err


# -- end to end ------------------------------------------------------------------------

@pytest.mark.pam
def test_imported_at_the_next_online_login_then_the_card_logs_in_offline(
        home, realm, pam_harness, pcscd):
    user, home_dir, uid = home
    realm.add_user(user, PW, offline=True)    # the server does not know the card
    jotp = realm.add_host("h1", tokens=["%s/pass" % user])
    realm.start()
    conf = realm.join("h1", jotp)
    cache_dir = os.path.join(pam_harness.dir, "offline")
    challenge = os.urandom(63)
    path = write(os.path.join(home_dir, ".yubico", "challenge-%d" % SERIAL),
                 v2_line(challenge=challenge), uid)
    out = io.StringIO()
    assert main(["import-pam-yubico", user, "--cache-dir", cache_dir], out=out) == 0, out.getvalue()
    assert "staged" in out.getvalue() and "v2" in out.getvalue()
    options = ("online host_config=%s use_smartcard=auto [smartcard_reader=Virtual PCD] "
               "connect_timeout=1 cache_login_tokens offline_cache_dir=%s %s"
               % (conf, cache_dir, FAST_KDF))
    pam_harness.service("sc", pam_harness.line(options),
                        pam_harness.line(options, type="account", control="sufficient"),
                        "account required pam_permit.so")

    def login(answers=()):
        mark = len(pam_harness.read_log())
        result = pam_harness.run("sc", user, "authenticate", "acct_mgmt", answers=list(answers),
                                 env=pcscd.env)
        result.new = result.log[mark:]
        return result

    # another card at the online login: not imported, kept
    wrong = VirtualYubiKey(port=pcscd.port, serial=SERIAL, slots={2: OTHER}).insert()
    result = login([PW])
    assert result.ok, result.new
    assert any("does not give the answer it expects; kept" in line for line in result.new)
    wrong.remove()
    card = VirtualYubiKey(port=pcscd.port, serial=SERIAL, slots={2: SECRET}).insert()
    try:
        result = login([PW])
        assert result.ok, result.new
        token = "%s/pam_yubico-%d" % (user, SERIAL)
        assert any("pam_yubico state of %s imported" % user in line and token in line
                   for line in result.new), result.new
        from otpme_auth_offline.cache import OfflineCache
        assert pamyubico.staged(OfflineCache(cache_dir), user) is None   # consumed
        realm.stop()
        result = login()
        assert result.ok, result.new
        assert "Password" not in result.output
        assert any("token %s opened with YubiKey %d" % (token, SERIAL) in line
                   for line in result.new), result.new
        text = "\n".join(result.log) + result.output
        assert SECRET.hex() not in text
        assert hmac.new(SECRET, challenge, hashlib.sha1).hexdigest() not in text
    finally:
        card.remove()
    assert os.path.exists(path)   # the original is the administrator's to remove
