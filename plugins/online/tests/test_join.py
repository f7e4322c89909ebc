"""otpme-auth join never takes the JOTP from the command line (issue 8, point 15)."""

import fcntl
import os
import subprocess
import sys
import termios
import time

import pytest

SCRIPT = os.path.join(os.path.dirname(sys.executable), "otpme-auth")


@pytest.fixture
def started(realm):
    realm.start()
    return realm


def join(realm, tmp_path, *extra, stdin=None, name="h1"):
    config = str(tmp_path / name / "host.conf")
    cmd = [SCRIPT, "join", "--host", name, "--ca", realm.ca_file, "--config", config,
           "--server", realm.server] + list(extra)
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60)
    return proc, config


def test_jotp_on_argv_is_refused_and_not_used(started, tmp_path):
    jotp = started.add_host("h1")
    proc, config = join(started, tmp_path, "--jotp", jotp)
    assert proc.returncode == 2
    assert "--jotp is refused" in proc.stderr and "/proc/PID/cmdline" in proc.stderr
    assert "--jotp-file" in proc.stderr
    assert not os.path.exists(config)
    # it was not sent either: the JOTP still joins, from stdin
    proc, config = join(started, tmp_path, stdin=jotp + "\n")
    assert proc.returncode == 0, proc.stderr
    assert os.path.exists(config)


def test_jotp_from_stdin_dash(started, tmp_path):
    jotp = started.add_host("h1")
    proc, config = join(started, tmp_path, "--jotp-file", "-", stdin=jotp + "\n")
    assert proc.returncode == 0, proc.stderr
    assert "joined realm example.org as h1" in proc.stdout


def test_jotp_file_private_only(started, tmp_path):
    jotp = started.add_host("h1")
    path = tmp_path / "jotp"
    path.write_text(jotp + "\n")
    os.chmod(path, 0o644)
    proc, config = join(started, tmp_path, "--jotp-file", str(path))
    assert proc.returncode == 2
    assert "has mode 0644: other users may read the join one-time password" in proc.stderr
    assert not os.path.exists(config)
    os.chmod(path, 0o600)
    proc, config = join(started, tmp_path, "--jotp-file", str(path))
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("content, expected", [
    (None, "No such file or directory"),
    ("", "no join one-time password read from --jotp-file"),
    ("two words\n", "is not one (printable ASCII"),
])
def test_jotp_file_errors_are_clear(started, tmp_path, content, expected):
    path = tmp_path / "jotp"
    if content is not None:
        path.write_text(content)
        os.chmod(path, 0o600)
    proc, config = join(started, tmp_path, "--jotp-file", str(path))
    assert proc.returncode == 2 and expected in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_jotp_typed_at_a_prompt_without_echo(started, tmp_path):
    """On a terminal the JOTP is asked without echo, and never shows in argv."""
    jotp = started.add_host("h1")
    config = str(tmp_path / "h1" / "host.conf")
    master, slave = os.openpty()

    def controlling_tty():
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen([SCRIPT, "join", "--host", "h1", "--ca", started.ca_file,
                             "--config", config, "--server", started.server],
                            stdin=slave, stdout=slave, stderr=slave, preexec_fn=controlling_tty)
    os.close(slave)
    output = b""
    deadline = time.monotonic() + 30
    while b"Join one-time password for h1: " not in output and time.monotonic() < deadline:
        output += os.read(master, 1024)
    with open("/proc/%d/cmdline" % proc.pid, "rb") as fh:
        assert jotp.encode() not in fh.read()
    os.write(master, jotp.encode() + b"\n")
    while True:
        try:
            chunk = os.read(master, 1024)
        except OSError:   # EIO: the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    assert proc.wait(timeout=30) == 0, output
    os.close(master)
    assert jotp.encode() not in output   # not echoed
    assert b"joined realm example.org as h1" in output


def test_a_failed_join_leaves_the_pinned_ca_alone(started, tmp_path):
    """A join that fails (a wrong --ca, a wrong JOTP) changes none of the host's files: it
    wrote the given CA over the pinned one before asking, so a joined host whose admin ran
    join with the wrong CA file trusted that CA afterwards (any server it signed)."""
    jotp = started.add_host("h1")
    proc, config = join(started, tmp_path, stdin=jotp + "\n")
    assert proc.returncode == 0, proc.stderr
    ca = os.path.join(os.path.dirname(config), "ca.pem")
    with open(ca, "rb") as fh:
        pinned = fh.read()
    other = os.path.join(started.server_dir, "server.pem")   # a PEM certificate, not the CA
    proc, _ = join(started, tmp_path, "--ca", other, stdin="WRONGJOTP\n")
    assert proc.returncode != 0
    assert "certificate not trusted" in proc.stderr, proc.stderr
    with open(ca, "rb") as fh:
        assert fh.read() == pinned
    proc, _ = join(started, tmp_path, stdin="WRONGJOTP\n")
    assert proc.returncode != 0 and "join refused" in proc.stderr, proc.stderr
    with open(ca, "rb") as fh:
        assert fh.read() == pinned
    assert sorted(os.listdir(os.path.dirname(config))) == ["ca.pem", "host.conf", "host.key",
                                                           "host.pem"]
