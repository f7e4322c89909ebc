"""mkhomedir: owner and modes, umask / HOME_MODE, skeleton copy, symlinks never followed.

These tests run as root and create real users (``useradd -M``) whose homes
live in the test's temp dir; each user is removed afterwards.
"""

import os
import pwd
import secrets
import stat
import subprocess
import time

import pytest

import otpme_auth_mkhomedir as mkhomedir
from otpme_auth import allow, deny, hookimpl, unavailable
from otpme_auth.keys import HOME_DIRECTORY

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creates users and chowns: needs root")


class Verifier:
    def __init__(self, answer):
        self.answer = answer

    @hookimpl
    def otpme_auth_verify(self, ctx):
        return self.answer()


def _run(cmd):
    # useradd/userdel fail while another process holds the passwd lock: retry a little.
    for _ in range(50):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode == 0 or "lock" not in proc.stderr:
            return proc
        time.sleep(0.1)
    return proc


@pytest.fixture
def make_user(tmp_path):
    """``make_user(home=None)`` -> a passwd entry of a fresh user; removed after the test."""
    made = []

    def make(home=None):
        name = "mkh%s" % secrets.token_hex(5)
        home = home or str(tmp_path / "home" / name)
        proc = _run(["useradd", "-M", "-d", home, "-s", "/usr/sbin/nologin", name])
        assert proc.returncode == 0, proc.stderr
        made.append(name)
        return pwd.getpwnam(name)

    yield make
    for name in made:
        _run(["userdel", name])


@pytest.fixture
def user(make_user):
    return make_user()


@pytest.fixture
def skel(tmp_path):
    """A skeleton with files, nested dirs, a relative symlink and symlinks pointing out."""
    root = tmp_path / "skel"
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o755)
    (outside / "victim").write_text("root's file\n")
    os.chmod(outside / "victim", 0o640)
    (outside / "dir").mkdir()
    (outside / "dir" / "secret").write_text("never copied\n")
    root.mkdir(mode=0o755)
    _file(root / ".bashrc", "bashrc\n", 0o644)
    _file(root / ".profile", "profile\n", 0o444)
    (root / "bin").mkdir(mode=0o755)
    _file(root / "bin" / "hello", "#!/bin/sh\necho hi\n", 0o755)
    (root / ".ssh").mkdir(mode=0o700)
    _file(root / ".ssh" / "config", "Host *\n", 0o600)
    (root / "a" / "b" / "c").mkdir(parents=True, mode=0o755)
    _file(root / "a" / "b" / "c" / "deep.txt", "deep\n", 0o644)
    os.symlink(".bashrc", root / "rc-link")
    os.symlink(str(outside / "victim"), root / "victim-link")
    os.symlink(str(outside / "dir"), root / "dir-link")
    os.mkfifo(root / "fifo")
    for d in (root, root / "a", root / "a" / "b", root / "a" / "b" / "c", root / "bin"):
        os.chmod(d, 0o755)  # whatever the test process's umask
    os.chmod(root / ".ssh", 0o700)
    return root


def _file(p, text, mode):
    p.write_text(text)
    os.chmod(p, mode)


def _defs(tmp_path, text):
    p = tmp_path / "login.defs"
    p.write_text(text)
    return p


def login(run_login, entry, args, answer=allow, function="authenticate"):
    return run_login({"v": Verifier(answer), "mkhomedir": mkhomedir},
                     ("v " if function == "authenticate" else "") + args,
                     user=entry.pw_name, function=function)


def mode(p):
    return stat.S_IMODE(os.lstat(p).st_mode)


def owned_by(p, entry):
    st = os.lstat(p)
    return (st.st_uid, st.st_gid) == (entry.pw_uid, entry.pw_gid)


# -- creation -------------------------------------------------------------

def test_creates_home_from_skeleton(run_login, user, skel, tmp_path):
    defs = _defs(tmp_path, "# comment\nUMASK\t\t022\n")
    result = login(run_login, user, "create_home home_skel=%s login_defs=%s" % (skel, defs))
    assert result.ok, result.log
    home = user.pw_dir
    assert result.shown == ["Creating directory '%s'." % home]
    assert result.ctx.stash[HOME_DIRECTORY] == home
    assert any("created home directory %s" % home in line for line in result.log)
    expected = {
        "": 0o755, ".bashrc": 0o644, ".profile": 0o644, "bin": 0o755, "bin/hello": 0o755,
        ".ssh": 0o700, ".ssh/config": 0o600, "a": 0o755, "a/b": 0o755, "a/b/c": 0o755,
        "a/b/c/deep.txt": 0o644,
    }
    for rel, want in expected.items():
        p = os.path.join(home, rel)
        assert owned_by(p, user), rel
        assert mode(p) == want, (rel, oct(mode(p)))
    assert open(os.path.join(home, "a/b/c/deep.txt")).read() == "deep\n"
    assert open(os.path.join(home, "bin/hello")).read() == "#!/bin/sh\necho hi\n"
    assert sorted(os.listdir(home)) == sorted(
        [".bashrc", ".profile", "bin", ".ssh", "a", "rc-link", "victim-link", "dir-link"])


def test_skeleton_symlinks_copied_as_symlinks_never_followed(run_login, user, skel, tmp_path):
    victim = tmp_path / "outside" / "victim"
    before = os.lstat(victim)
    result = login(run_login, user, "create_home home_skel=%s" % skel)
    assert result.ok, result.log
    home = user.pw_dir
    for name, target in (("rc-link", ".bashrc"), ("victim-link", str(victim)),
                         ("dir-link", str(tmp_path / "outside" / "dir"))):
        p = os.path.join(home, name)
        assert os.path.islink(p) and os.readlink(p) == target
        assert owned_by(p, user)  # the link itself, lchown
    after = os.lstat(victim)
    assert (after.st_uid, after.st_gid, after.st_mode) == (before.st_uid, before.st_gid,
                                                           before.st_mode)
    assert os.lstat(tmp_path / "outside" / "dir").st_uid == 0
    assert not os.path.exists(os.path.join(home, "secret"))


def test_special_files_skipped(run_login, user, skel):
    result = login(run_login, user, "create_home home_skel=%s" % skel)
    assert result.ok and not os.path.lexists(os.path.join(user.pw_dir, "fifo"))


def test_home_mode_and_umask_from_login_defs(run_login, user, skel, tmp_path):
    defs = _defs(tmp_path, "UMASK 077\nHOME_MODE 0750\n")
    result = login(run_login, user, "create_home home_skel=%s login_defs=%s" % (skel, defs))
    assert result.ok, result.log
    home = user.pw_dir
    assert mode(home) == 0o750
    assert mode(os.path.join(home, ".bashrc")) == 0o600
    assert mode(os.path.join(home, "bin")) == 0o700
    assert mode(os.path.join(home, "bin/hello")) == 0o700


def test_umask_option_wins_over_login_defs(run_login, user, skel, tmp_path):
    defs = _defs(tmp_path, "UMASK 077\n")
    result = login(run_login, user,
                   "create_home home_skel=%s login_defs=%s umask=027" % (skel, defs))
    assert result.ok, result.log
    home = user.pw_dir
    assert mode(home) == 0o750  # no HOME_MODE: 0777 & ~umask
    assert mode(os.path.join(home, ".bashrc")) == 0o640
    assert mode(os.path.join(home, "a/b")) == 0o750


def test_home_mode_wins_over_umask_option(run_login, user, skel, tmp_path):
    defs = _defs(tmp_path, "HOME_MODE 0700\n")
    result = login(run_login, user,
                   "create_home home_skel=%s login_defs=%s umask=002" % (skel, defs))
    assert result.ok, result.log
    assert mode(user.pw_dir) == 0o700
    assert mode(os.path.join(user.pw_dir, ".bashrc")) == 0o664


def test_defaults_without_login_defs(run_login, user, skel, tmp_path):
    result = login(run_login, user, "create_home home_skel=%s login_defs=%s"
                   % (skel, tmp_path / "missing.defs"))
    assert result.ok, result.log
    assert mode(user.pw_dir) == 0o755
    assert mode(os.path.join(user.pw_dir, ".bashrc")) == 0o644


def test_bad_umask_in_login_defs_fails_closed(run_login, user, skel, tmp_path):
    defs = _defs(tmp_path, "UMASK 0x9999\n")
    result = login(run_login, user, "create_home home_skel=%s login_defs=%s" % (skel, defs))
    assert not result.ok
    assert any("bad UMASK" in line for line in result.log)
    assert not os.path.lexists(user.pw_dir)


def test_bad_umask_option_fails_closed(run_login, user, skel):
    result = login(run_login, user, "create_home umask=999")
    assert result.code == "SERVICE_ERR"
    assert any("umask" in line for line in result.log)


def test_missing_parents_created_root_0755(run_login, make_user, skel, tmp_path):
    entry = make_user(str(tmp_path / "homes" / "deep" / "x"))
    old = os.umask(0o077)
    try:
        result = login(run_login, entry, "create_home home_skel=%s" % skel)
    finally:
        os.umask(old)
    assert result.ok, result.log
    for p in (tmp_path / "homes", tmp_path / "homes" / "deep"):
        st = os.lstat(p)
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, 0o755)
    assert owned_by(entry.pw_dir, entry)


def test_default_skeleton_is_etc_skel():
    declared = {o.name: o for o in mkhomedir.otpme_auth_declare_options()}
    assert declared["home_skel"].default == "/etc/skel"
    assert declared["login_defs"].default == "/etc/login.defs"
    assert declared["umask"].default is None
    assert [n for n, o in declared.items() if o.enables] == ["create_home"]


def test_missing_default_skeleton_gives_an_empty_home(run_login, user, tmp_path, monkeypatch):
    # The default /etc/skel may be absent on a minimal system: not an error.
    monkeypatch.setattr(mkhomedir, "DEFAULT_SKEL", str(tmp_path / "no-skel"))
    result = login(run_login, user, "create_home")
    assert result.ok, result.log
    assert os.listdir(user.pw_dir) == [] and owned_by(user.pw_dir, user)
    assert any("no skeleton directory" in line for line in result.log)


def test_missing_given_skeleton_is_an_error(run_login, user, tmp_path):
    result = login(run_login, user, "create_home home_skel=%s" % (tmp_path / "nope"))
    assert not result.ok
    assert any("skeleton directory" in line and "does not exist" in line for line in result.log)
    assert not os.path.lexists(user.pw_dir)


def test_home_without_skeleton(run_login, user, tmp_path):
    empty = tmp_path / "empty-skel"
    empty.mkdir(mode=0o755)
    os.chmod(empty, 0o755)
    result = login(run_login, user, "create_home home_skel=%s" % empty)
    assert result.ok and os.listdir(user.pw_dir) == [] and owned_by(user.pw_dir, user)


# -- what must not happen -------------------------------------------------

def test_existing_home_untouched(run_login, user, skel):
    os.makedirs(user.pw_dir)
    os.chmod(user.pw_dir, 0o711)
    (open(os.path.join(user.pw_dir, "mine"), "w")).close()
    result = login(run_login, user, "create_home home_skel=%s" % skel)
    assert result.ok
    st = os.lstat(user.pw_dir)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o711)
    assert os.listdir(user.pw_dir) == ["mine"]
    assert result.shown == []
    assert result.ctx.stash[HOME_DIRECTORY] == user.pw_dir


def test_symlink_at_home_path_not_followed(run_login, user, skel, tmp_path):
    target = tmp_path / "target"
    target.mkdir(mode=0o700)
    os.makedirs(os.path.dirname(user.pw_dir))
    os.symlink(str(target), user.pw_dir)
    result = login(run_login, user, "create_home home_skel=%s" % skel)
    assert result.ok
    assert os.path.islink(user.pw_dir)
    assert os.listdir(target) == []
    st = os.lstat(target)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o700)
    assert any(level == "warning" and "symlink" in line for level, line in result.log_records)
    assert HOME_DIRECTORY not in result.ctx.stash


def test_dangling_symlink_at_home_path_not_followed(run_login, user, skel, tmp_path):
    target = tmp_path / "would-be-created"
    os.makedirs(os.path.dirname(user.pw_dir))
    os.symlink(str(target), user.pw_dir)
    result = login(run_login, user, "create_home home_skel=%s" % skel)
    assert result.ok and not os.path.lexists(target)


@pytest.mark.parametrize("answer", [lambda: deny("wrong password"), lambda: unavailable("down")])
def test_nothing_created_when_authentication_fails(run_login, user, skel, answer):
    result = login(run_login, user, "create_home home_skel=%s" % skel, answer=answer)
    assert not result.ok
    assert not os.path.lexists(user.pw_dir)
    assert not os.path.lexists(os.path.dirname(user.pw_dir))
    assert not result.called("otpme_auth_post_login", "mkhomedir")


def test_unknown_user_is_a_clear_error(run_login, skel):
    result = run_login({"v": Verifier(allow), "mkhomedir": mkhomedir},
                       "v create_home home_skel=%s" % skel, user="nosuchuser-q7z")
    assert result.code == "SERVICE_ERR"
    assert any("mkhomedir" in line and "no such user" in line for line in result.log)


def test_unsafe_skeleton_refused_and_partial_home_removed(run_login, user, skel, tmp_path):
    # A skeleton directory the user could write into: refused mid-copy.
    os.chown(skel / "a" / "b", user.pw_uid, user.pw_gid)
    result = login(run_login, user, "create_home home_skel=%s" % skel)
    assert not result.ok
    assert any("must be owned by root" in line and "removed the partial home" in line
               for line in result.log), result.log
    assert not os.path.lexists(user.pw_dir)
    # Fixed, the next login creates it: nothing was left to block it.
    os.chown(skel / "a" / "b", 0, 0)
    again = login(run_login, user, "create_home home_skel=%s" % skel)
    assert again.ok and owned_by(user.pw_dir, user)


def test_cleanup_after_links_were_copied_never_follows_them(run_login, user, skel, tmp_path):
    # "zz" sorts last: the symlinks are already copied when the copy fails.
    (skel / "zz").mkdir(mode=0o755)
    os.chmod(skel / "zz", 0o777)
    result = login(run_login, user, "create_home home_skel=%s" % skel)
    assert not result.ok and not os.path.lexists(user.pw_dir)
    assert (tmp_path / "outside" / "victim").read_text() == "root's file\n"
    assert (tmp_path / "outside" / "dir" / "secret").exists()
    assert os.path.islink(skel / "victim-link")


def test_io_error_is_one_clear_line_and_cleans_up(run_login, user, skel, monkeypatch):
    import errno

    def broken(*args):
        raise OSError(errno.EIO, os.strerror(errno.EIO))
    monkeypatch.setattr(mkhomedir, "copy_file", broken)
    result = login(run_login, user, "create_home home_skel=%s" % skel)
    assert result.code == "SERVICE_ERR"
    line = next(line for line in result.log if "cannot create home directory" in line)
    assert "cannot copy %s/.bashrc: Input/output error; removed the partial home" % skel in line
    assert not os.path.lexists(user.pw_dir)
    assert result.ctx.messages == ["Your home directory could not be created."]


def test_group_writable_skeleton_refused(run_login, user, skel):
    os.chmod(skel, 0o775)
    result = login(run_login, user, "create_home home_skel=%s" % skel)
    assert not result.ok and not os.path.lexists(user.pw_dir)


def test_relative_home_refused(run_login, user, skel, monkeypatch):
    # useradd/usermod refuse relative homes; a directory service (nss) may not.
    entry = pwd.struct_passwd((user.pw_name, "x", user.pw_uid, user.pw_gid, "", "relative/home",
                               "/bin/sh"))
    monkeypatch.setattr(mkhomedir.pwd, "getpwnam", lambda name: entry)
    result = login(run_login, user, "create_home home_skel=%s" % skel)
    assert not result.ok and any("not an absolute path" in line for line in result.log)
    assert not os.path.lexists("relative")


# -- the session hook -----------------------------------------------------

def test_open_session_creates_home(run_login, user, skel):
    result = login(run_login, user, "create_home home_skel=%s" % skel, function="open_session")
    assert result.code == "SUCCESS", result.log
    assert result.called("otpme_auth_open_session", "mkhomedir")
    assert owned_by(user.pw_dir, user) and mode(user.pw_dir) == 0o755
    assert os.path.islink(os.path.join(user.pw_dir, "rc-link"))


def test_open_session_failure_is_session_err(run_login, skel):
    result = run_login({"mkhomedir": mkhomedir}, "create_home home_skel=%s" % skel,
                       user="nosuchuser-q7z", function="open_session")
    assert result.code == "SESSION_ERR"


def test_auth_then_session_creates_once(run_login, user, skel):
    first = login(run_login, user, "create_home home_skel=%s" % skel)
    second = login(run_login, user, "create_home home_skel=%s" % skel, function="open_session")
    assert first.ok and second.code == "SUCCESS"
    assert first.shown and not second.shown


def test_named_plugin_enables_it(run_login, user, skel):
    result = run_login({"v": Verifier(allow), "mkhomedir": mkhomedir},
                       "v mkhomedir home_skel=%s" % skel, user=user.pw_name)
    assert result.ok and os.path.isdir(user.pw_dir)


def test_home_skel_requires_the_plugin(run_login, user, skel):
    """Seed 000: home_skel "requires create_home". Without it the option is accepted, as
    pam_otpme accepts it (issue 9 point 9), and creates nothing; with it, a bad value fails."""
    result = run_login({"v": Verifier(allow), "mkhomedir": mkhomedir},
                       "v home_skel=%s" % skel, user=user.pw_name)
    assert result.code == "SUCCESS" and not os.path.lexists(user.pw_dir)
    assert any("does nothing on this line" in line for line in result.log)
    bad = run_login({"v": Verifier(allow), "mkhomedir": mkhomedir},
                    "v create_home home_skel=relative", user=user.pw_name)
    assert bad.code == "SERVICE_ERR" and not os.path.lexists(user.pw_dir)


# -- helpers --------------------------------------------------------------

@pytest.mark.parametrize("text,value", [("022", 0o22), ("0077", 0o77), ("0750", 0o750),
                                        ("0x12", 0o22), ("2775", 0o2775)])
def test_parse_mode(text, value):
    assert mkhomedir.parse_mode(text, "UMASK", "/etc/login.defs") == value


@pytest.mark.parametrize("text", ["", "08", "abc", "-22", "077777", "0x"])
def test_parse_mode_rejects(text):
    with pytest.raises(mkhomedir.HomeError, match="bad UMASK"):
        mkhomedir.parse_mode(text, "UMASK", "/etc/login.defs")


@pytest.mark.parametrize("raw,home", [("/home/alice", "/home/alice"), ("/home//alice/", "/home/alice")])
def test_home_path(raw, home):
    assert mkhomedir.home_path(raw, "alice") == home


@pytest.mark.parametrize("raw", ["home/alice", "/home/../etc", "/home/./alice"])
def test_home_path_rejects(raw):
    with pytest.raises(mkhomedir.HomeError):
        mkhomedir.home_path(raw, "alice")


# -- through real libpam --------------------------------------------------

def _passfile(tmp_path, user, password):
    from otpme_auth_passfile import CHEAPEST, hash_line
    p = tmp_path / "passwd"
    p.write_text(hash_line(user, password, **CHEAPEST) + "\n")
    os.chmod(p, 0o600)
    return p


@pytest.mark.pam
def test_create_home_auth_line_through_libpam(pam_harness, user, skel, tmp_path):
    passfile = _passfile(tmp_path, user.pw_name, "pw-for-home")
    pam_harness.service("mkh", pam_harness.line(
        "passfile passfile_path=%s create_home home_skel=%s" % (passfile, skel)))
    denied = pam_harness.run("mkh", user.pw_name, answers=["not-it"])
    assert denied.code == "AUTH_ERR" and not os.path.lexists(user.pw_dir)
    result = pam_harness.run("mkh", user.pw_name, answers=["pw-for-home"])
    assert result.ok, (result.output, result.log)
    assert "Creating directory '%s'." % user.pw_dir in result.output
    assert owned_by(user.pw_dir, user) and mode(user.pw_dir) == 0o755
    assert owned_by(os.path.join(user.pw_dir, ".bashrc"), user)
    assert os.path.islink(os.path.join(user.pw_dir, "victim-link"))


@pytest.mark.pam
def test_create_home_session_line_through_libpam(pam_harness, user, skel, tmp_path):
    passfile = _passfile(tmp_path, user.pw_name, "pw-for-home")
    pam_harness.service(
        "mkhs",
        pam_harness.line("passfile passfile_path=%s" % passfile),
        pam_harness.line("create_home home_skel=%s" % skel, type="session"))
    result = pam_harness.run("mkhs", user.pw_name, "authenticate", "open_session",
                             answers=["pw-for-home"])
    assert result.ok, (result.output, result.log)
    assert owned_by(user.pw_dir, user)
    assert owned_by(os.path.join(user.pw_dir, "a/b/c/deep.txt"), user)
    assert any("created home directory %s" % user.pw_dir in line for line in result.log)
