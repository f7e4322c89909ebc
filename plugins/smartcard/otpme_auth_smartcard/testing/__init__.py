"""Test fixtures of the smartcard plugin: a real ``pcscd`` with the vpcd reader driver,
and a virtual YubiKey OTP applet that speaks the real APDUs to it (:mod:`.vcard`).

Never imported on the login path.
"""

import os
import shutil
import subprocess
import tempfile
import time

from otpme_auth.testing.procs import free_port, stop_process

from .vcard import VirtualYubiKey

VPCD_DRIVER = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"
READER = "Virtual PCD"


def vpcd_ports():
    """A port P where P and P+1 (vpcd's two readers) can both be bound as vpcd binds them,
    without SO_REUSEADDR.  Outside the ephemeral range: the virtual cards' own client
    sockets take ephemeral ports, and one in TIME_WAIT made vpcd's bind fail ("Address
    already in use") when free_port() handed out its number."""
    import random
    import socket
    for _ in range(200):
        port = random.randrange(20000, 32000, 2)
        taken = []
        try:
            for p in (port, port + 1):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                taken.append(s)
                s.bind(("", p))
            return port
        except OSError:
            continue
        finally:
            for s in taken:
                s.close()
    return free_port()


class Pcscd:
    """A private pcscd: its own reader.conf (vpcd on a free loopback port) and its own
    socket, so the host's pcscd (if any) is never touched.  pcscd always creates
    ``/run/pcscd/pcscd.comm``: it runs in a private mount namespace where a directory of
    ours is bound over ``/run/pcscd``, and clients find the socket there through
    ``PCSCLITE_CSOCK_NAME`` (libpcsclite reads it)."""

    def __init__(self):
        # vpcd listens on two ports (readers 0 and 1) that we choose; if another process
        # took one meanwhile, it never listens there: start again on other ports.
        for attempt in range(3):
            self._start()
            if self._vpcd_listening(timeout=10):
                return
            self.stop()
        raise RuntimeError("vpcd did not listen on its ports: %s" % self.log_text())

    def _start(self):
        self.dir = tempfile.mkdtemp(prefix="otpme-pcscd-")
        self.port = vpcd_ports()
        run = os.path.join(self.dir, "run")
        os.mkdir(run)
        self.socket = os.path.join(run, "pcscd.comm")
        conf = os.path.join(self.dir, "reader.conf.d")
        os.mkdir(conf)
        with open(os.path.join(conf, "vpcd"), "w") as f:
            f.write('FRIENDLYNAME "%s"\nDEVICENAME   /dev/null:0x%X\nLIBPATH      %s\nCHANNELID    0x%X\n'
                    % (READER, self.port, VPCD_DRIVER, self.port))
        self.env = {"PCSCLITE_CSOCK_NAME": self.socket}
        self.log = open(os.path.join(self.dir, "pcscd.log"), "wb")
        pcscd = shutil.which("pcscd", path=os.environ.get("PATH", "") + ":/usr/sbin")
        if pcscd is None or not os.path.exists(VPCD_DRIVER):
            raise RuntimeError("pcscd or vsmartcard-vpcd is not installed (.ci/apt-packages.txt)")
        script = 'mkdir -p /run/pcscd && mount --bind "$1" /run/pcscd && shift && exec "$@"'
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", run,
             pcscd, "--foreground", "--config", conf, "--error"],
            env=dict(os.environ, **self.env), stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while not os.path.exists(self.socket):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("pcscd did not start: %s" % self.log_text())
            time.sleep(0.05)

    def _vpcd_listening(self, timeout):
        """Whether vpcd listens on both reader ports (read from /proc: a probe connection
        would be a card insertion)."""
        wanted = {"%04X" % self.port, "%04X" % (self.port + 1)}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            listening = set()
            for table in ("/proc/net/tcp", "/proc/net/tcp6"):
                try:
                    with open(table) as fh:
                        rows = fh.read().splitlines()[1:]
                except OSError:
                    continue
                listening |= {r.split()[1].rsplit(":", 1)[1] for r in rows if r.split()[3] == "0A"}
            if wanted <= listening:
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.05)
        return False

    def log_text(self):
        try:
            with open(os.path.join(self.dir, "pcscd.log"), "rb") as f:
                return f.read().decode("utf-8", "replace")[-2000:]
        except OSError:
            return ""

    def card(self, reader=0, **kw):
        """Insert a virtual YubiKey into vpcd reader 0 or 1 (``card.remove()`` takes it out)."""
        return VirtualYubiKey(port=self.port + reader, **kw).insert()

    def stop(self):
        stop_process(self.proc)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
