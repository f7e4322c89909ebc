"""State files: safe to open as root in a user's directory, atomic, locked."""

import multiprocessing
import os
import random
import signal
import subprocess
import time

import pytest

from otpme_auth.errors import StateFileError
from otpme_auth.statefile import StateFile, read


@pytest.fixture
def d(tmp_path):
    return tmp_path


def test_missing_file_reads_as_none(d):
    assert read(str(d / "nope")) is None


def test_create_with_owner_and_mode_then_keep_them(d):
    path = str(d / "state")
    with StateFile.lock(path, create_mode=0o600) as state:
        assert state.data is None
        state.replace(b"one")
    st = os.stat(path)
    assert oct(st.st_mode & 0o777) == "0o600" and st.st_uid == os.geteuid()
    os.chmod(path, 0o400)
    with StateFile.lock(path, allowed_mode=0o600) as state:
        assert state.data == b"one"
        state.replace(b"two")
        state.replace(b"three")   # twice under one lock is fine
    assert read(path, allowed_mode=0o600) == b"three"
    assert oct(os.stat(path).st_mode & 0o777) == "0o400"
    assert sorted(os.listdir(d)) == ["state"]  # no temp files left


def test_owner_is_kept_for_a_user_file(d):
    path = str(d / "userfile")
    with open(path, "wb") as fh:
        fh.write(b"x")
    os.chmod(path, 0o600)
    if os.geteuid() != 0:
        pytest.skip("needs root to chown")
    os.chown(path, 65534, 65534)
    with StateFile.lock(path, owner=65534) as state:
        state.replace(b"y")
    st = os.stat(path)
    assert (st.st_uid, st.st_gid) == (65534, 65534)


@pytest.mark.parametrize("setup, message", [
    (lambda p: (open(p, "w").close(), os.chmod(p, 0o644)), "mode 0644"),
    (lambda p: (open(p, "w").close(), os.chmod(p, 0o620)), "mode 0620"),
    (lambda p: os.symlink("/etc/passwd", p), "symlink"),
    (lambda p: os.mkfifo(p, 0o600), "not a regular file"),
    (lambda p: os.mkdir(p, 0o700), "not a regular file"),
])
def test_unsafe_files_are_refused(d, setup, message):
    path = str(d / "state")
    setup(path)
    with pytest.raises(StateFileError, match=message):
        read(path)
    with pytest.raises(StateFileError):
        with StateFile.lock(path, timeout=0.5):
            pass


def test_wrong_owner_refused(d):
    path = str(d / "state")
    open(path, "w").close()
    os.chmod(path, 0o600)
    with pytest.raises(StateFileError, match="owned by uid 4242"):
        read(path, owner=4242)


def test_hard_link_refused(d):
    path = str(d / "state")
    open(path, "w").close()
    os.chmod(path, 0o600)
    os.link(path, str(d / "other"))
    with pytest.raises(StateFileError, match="hard links"):
        read(path)


def test_symlinked_directory_is_never_followed(d):
    (d / "real").mkdir()
    (d / "real" / "state").write_bytes(b"x")
    os.chmod(d / "real" / "state", 0o600)
    os.symlink(d / "real", d / "link")
    with pytest.raises(StateFileError, match="symlink|not a directory"):
        read(str(d / "link" / "state"))
    with pytest.raises(StateFileError):
        with StateFile.lock(str(d / "link" / "new")) as state:
            state.replace(b"through the link")
    assert not (d / "real" / "new").exists()


@pytest.mark.parametrize("path", ["relative/state", "/tmp/../etc/state"])
def test_bad_paths(path):
    with pytest.raises(StateFileError):
        read(path)


def test_large_file_refused(d):
    path = d / "big"
    path.write_bytes(b"x" * (2 << 20))
    os.chmod(path, 0o600)
    with pytest.raises(StateFileError, match="larger"):
        read(str(path))


def _increment(path, times):
    for _ in range(times):
        with StateFile.lock(path) as state:
            value = int(state.data or b"0")
            time.sleep(0.0005)  # widen the race window
            state.replace(b"%d" % (value + 1))


def test_concurrent_writers_lose_no_update(d):
    path = str(d / "counter")
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_increment, args=(path, 25)) for _ in range(20)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
        assert w.exitcode == 0
    assert read(path) == b"500"


def _write_forever(path):
    n = 0
    while True:
        n += 1
        body = (b"%08d" % n) * 4096          # 32 KiB, so a write can be cut
        with StateFile.lock(path) as state:
            state.replace(body)


def test_killed_writers_leave_old_or_new_never_broken(d):
    path = str(d / "state")
    with StateFile.lock(path) as state:
        state.replace((b"%08d" % 0) * 4096)
    rng = random.Random(7)
    ctx = multiprocessing.get_context("fork")
    for trial in range(200):
        writer = ctx.Process(target=_write_forever, args=(path,))
        writer.start()
        time.sleep(rng.uniform(0, 0.004))
        os.kill(writer.pid, signal.SIGKILL)
        writer.join()
        data = read(path)
        assert len(data) == 8 * 4096, "trial %d: truncated to %d bytes" % (trial, len(data))
        assert data == data[:8] * 4096, "trial %d: mixed contents" % trial
    with StateFile.lock(path) as state:   # and the next writer is not blocked by leftovers
        state.replace(b"after")
    assert read(path) == b"after"


@pytest.fixture
def tiny_fs(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: %s" % proc.stderr.strip())
    yield str(mnt)
    subprocess.run(["umount", str(mnt)], check=False)


def test_full_filesystem_changes_nothing(tiny_fs):
    path = os.path.join(tiny_fs, "state")
    with StateFile.lock(path) as state:
        state.replace(b"old contents")
    with pytest.raises(StateFileError, match="full; nothing was changed"):
        with StateFile.lock(path) as state:
            state.replace(b"x" * (1 << 20))
    assert read(path) == b"old contents"
    assert sorted(os.listdir(tiny_fs)) == ["state"]


def test_read_only_filesystem_changes_nothing(tiny_fs):
    path = os.path.join(tiny_fs, "state")
    with StateFile.lock(path) as state:
        state.replace(b"old contents")
    subprocess.run(["mount", "-o", "remount,ro", tiny_fs], check=True)
    with pytest.raises(StateFileError, match="read-only"):
        with StateFile.lock(path) as state:
            state.replace(b"new")
    assert read(path) == b"old contents"


def test_errors_carry_the_errno(d):
    import errno
    os.symlink("/etc/passwd", str(d / "state"))
    with pytest.raises(StateFileError) as info:
        read(str(d / "state"))
    assert info.value.errno == errno.ELOOP
    with pytest.raises(StateFileError) as info:
        read(str(d / "nodir" / "state"))
    assert info.value.errno == errno.ENOENT


def test_a_set_of_allowed_owners(d):
    path = str(d / "state")
    open(path, "w").close()
    os.chmod(path, 0o600)
    assert read(path, owner={4242, os.geteuid()}) == b""
    with pytest.raises(StateFileError, match="4242 or 4343"):
        read(path, owner={4242, 4343})


def test_read_only_file_can_be_locked_and_read(d):
    path = str(d / "state")
    with StateFile.lock(path) as state:
        state.replace(b"x")
    os.chmod(path, 0o400)
    with StateFile.lock(path, allowed_mode=0o600) as state:
        assert state.data == b"x"


def test_remove(d):
    from otpme_auth.statefile import remove
    path = str(d / "state")
    with StateFile.lock(path) as state:
        state.replace(b"x")
    assert remove(path) is True and not os.path.exists(path)
    assert remove(path) is False


def test_ensure_dir(d):
    from otpme_auth.statefile import ensure_dir
    target = str(d / "cache")
    ensure_dir(target, 0o700, owner=os.geteuid(), group=os.getegid())
    assert oct(os.stat(target).st_mode & 0o777) == "0o700"
    ensure_dir(target, 0o700, owner=os.geteuid(), group=os.getegid())  # idempotent
    os.chmod(target, 0o755)
    with pytest.raises(StateFileError, match="mode 0755"):
        ensure_dir(target, 0o700, owner=os.geteuid(), group=os.getegid())
    os.symlink(target, str(d / "link"))
    with pytest.raises(StateFileError, match="not a directory"):
        ensure_dir(str(d / "link"), 0o755, owner=os.geteuid(), group=os.getegid())
