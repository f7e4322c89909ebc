"""A throw-away realm for host-side tests: a real server on loopback, joined hosts.

Shipped with the server distribution as an opt-in pytest plugin (the
``otpme_auth_realm`` fixture: ``pytest_plugins = ["otpme_auth_server.testing"]``), so
plugin authors who test against a realm install ``otpme-auth-server`` beside the kit.
Everything goes through the console scripts (``otpme-auth-server``,
``otpme-auth-admin``, ``otpme-auth join``), as an administrator would type them: the
test and the server meet only in the protocol.
Password hashing is set cheap (argon2id t=1, 8 MiB) for speed.
"""

import json
import os
import re
import subprocess
import sys
import time

import pytest

from otpme_auth.testing.procs import free_port, stop_process, wait_for_port

TEST_ARGON2 = {"time_cost": 1, "memory_cost": 8192, "parallelism": 1}


def _script(name):
    return os.path.join(os.path.dirname(sys.executable), name)


class Realm:
    """``realm.admin("user", "add", "alice")``, ``realm.start()``, ``realm.join("h1")``."""

    def __init__(self, directory, name="example.org", site="berlin"):
        self.dir = str(directory)
        self.server_dir = os.path.join(self.dir, "server")
        self.port = free_port()
        self.proc = None
        self._log = None
        self._run(_script("otpme-auth-server"), "init", "--dir", self.server_dir,
                  "--realm", name, "--site", site, "--listen", "127.0.0.1:%d" % self.port)
        path = os.path.join(self.server_dir, "server.json")
        with open(path) as fh:
            config = json.load(fh)
        config["argon2"] = TEST_ARGON2
        with open(path, "w") as fh:
            json.dump(config, fh)
        self.ca_file = os.path.join(self.server_dir, "ca.pem")

    def _run(self, *cmd, stdin=None):
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError("%s failed: %s" % (" ".join(cmd[:3]), proc.stdout + proc.stderr))
        return proc.stdout

    def admin(self, *args, stdin=None):
        """Run ``otpme-auth-admin --dir SERVER ARGS``; returns its output."""
        return self._run(_script("otpme-auth-admin"), "--dir", self.server_dir, *args, stdin=stdin)

    def add_user(self, user, password, token="pass", second_factor=None, offline=False,
                 session_keep=False, pin=False):
        """A user with a password token (``second_factor``: "totp"); returns the TOTP secret.

        The second factor has no PIN (typed: password+code) unless ``pin=True``: then
        it gets a generated PIN (typed: password+PIN+code) and (secret, pin) is returned.
        """
        self.admin("user", "add", user, "--no-login-token")
        self.admin("token", "add", "--type", "password", "%s/%s" % (user, token), "-",
                   stdin=password + "\n")
        secret = shown_pin = None
        if second_factor:
            out = self.admin("token", "add", "--type", second_factor, "%s/%s" % (user, second_factor),
                             *(() if pin else ("--no-pin",)))
            secret = re.search(r"secret=([A-Z2-7]+)", out).group(1)
            if pin:
                shown_pin = re.search(r"PIN \(shown once\): (\d+)", out).group(1)
            self.admin("token", "2f_token", "%s/%s" % (user, token), second_factor)
            self.admin("token", "enable_2f", "%s/%s" % (user, token))
        if offline:
            self.admin("token", "enable_offline", "%s/%s" % (user, token))
        if session_keep:
            self.admin("token", "enable_session_keep", "%s/%s" % (user, token))
        return (secret, shown_pin) if pin else secret

    def add_host(self, host, tokens=()):
        """Add ``host`` with access for ``tokens`` ("user/token"); returns its JOTP."""
        out = self.admin("host", "add", host)
        jotp = re.search(r"join one-time password[^:]*:\s*(\S+)", out).group(1)
        for token in tokens:
            self.admin("host", "add_token", host, token)
        return jotp

    def start(self):
        self._log = open(os.path.join(self.dir, "server.log"), "a")
        self.proc = subprocess.Popen([_script("otpme-auth-server"), "run", "--dir", self.server_dir],
                                     stdout=self._log, stderr=subprocess.STDOUT)
        if wait_for_port(self.proc, self.port):
            return self
        raise RuntimeError("the server did not start: " + self.server_log())

    def stop(self):
        stop_process(self.proc)
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None

    @property
    def server(self):
        return "127.0.0.1:%d" % self.port

    def join(self, host, jotp=None, servers=None, config_dir=None):
        """Join ``host`` (added first if no JOTP is given); returns the host.conf path."""
        jotp = jotp or self.add_host(host)
        config_dir = config_dir or os.path.join(self.dir, "hosts", host)
        os.makedirs(config_dir, mode=0o755, exist_ok=True)
        config = os.path.join(config_dir, "host.conf")
        cmd = [_script("otpme-auth"), "join", "--host", host, "--jotp-file", "-",
               "--ca", self.ca_file, "--config", config]
        for server in servers or [self.server]:
            cmd += ["--server", server]
        self._run(*cmd, stdin=jotp + "\n")   # never on argv (issue 8)
        return config

    def server_log(self):
        try:
            with open(os.path.join(self.dir, "server.log")) as fh:
                return fh.read()
        except FileNotFoundError:
            return ""


@pytest.fixture
def otpme_auth_realm(tmp_path):
    """A :class:`Realm` (not started) in a temp dir; stopped after."""
    r = Realm(tmp_path / "realm")
    yield r
    r.stop()
