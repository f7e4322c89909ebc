"""Real ssh-agents for the tests: started as a throw-away user, keys of every accepted type."""

import os
import pwd
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading

from otpme_auth.testing import skip_or_fail

KEY_SPECS = {  # name -> ssh-keygen arguments
    "ed25519": ["-t", "ed25519"],
    "ecdsa256": ["-t", "ecdsa", "-b", "256"],
    "ecdsa384": ["-t", "ecdsa", "-b", "384"],
    "ecdsa521": ["-t", "ecdsa", "-b", "521"],
    "rsa": ["-t", "rsa", "-b", "3072"],
}


def need_tools():
    missing = [t for t in ("ssh-agent", "ssh-add", "ssh-keygen") if shutil.which(t) is None]
    if missing:
        skip_or_fail("needs openssh-client: %s" % ", ".join(missing))


def as_user(name):
    pw = pwd.getpwnam(name)
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


class Keys:
    """Key pairs made once per test session (ssh-keygen is slow for RSA)."""

    def __init__(self, directory):
        self.dir = directory
        self.private, self.public = {}, {}
        for name, args in KEY_SPECS.items():
            path = os.path.join(directory, name)
            subprocess.run(["ssh-keygen", "-q", "-N", "", "-C", "test-%s" % name, "-f", path] + args,
                           check=True, capture_output=True)
            self.private[name] = path
            with open(path + ".pub") as fh:
                self.public[name] = fh.read().strip()


class RootDir:
    """A root-owned 0755 directory outside /tmp (world-writable /tmp fails the key-file checks)."""

    def __init__(self):
        os.makedirs("/run/otpme-auth-tests", mode=0o755, exist_ok=True)
        os.chmod("/run/otpme-auth-tests", 0o755)
        self.path = tempfile.mkdtemp(dir="/run/otpme-auth-tests")
        os.chmod(self.path, 0o755)

    def write(self, name, text, mode=0o644, owner=0):
        path = os.path.join(self.path, name)
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        with open(path, "w") as fh:
            fh.write(text)
        os.chmod(path, mode)
        os.chown(path, owner, -1)
        return path

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)


class UserAgent:
    """A real ``ssh-agent -a SOCK`` run as ``user``, its socket in a 0700 dir of the user."""

    def __init__(self, user, base, keys=()):
        pw = pwd.getpwnam(user)
        self.user = user
        self.dir = tempfile.mkdtemp(dir=base)
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        os.chmod(self.dir, 0o700)
        self.sock = os.path.join(self.dir, "agent.sock")
        self.proc = subprocess.Popen(["ssh-agent", "-D", "-a", self.sock], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, **as_user(user))
        for _ in range(200):
            if os.path.exists(self.sock):
                break
            threading.Event().wait(0.02)
        self.add(*keys)

    def add(self, *paths):
        pw = pwd.getpwnam(self.user)
        for path in paths:
            # ssh-add refuses a private key others can read: give the user a copy.
            copy = os.path.join(self.dir, os.path.basename(path))
            shutil.copyfile(path, copy)
            os.chown(copy, pw.pw_uid, pw.pw_gid)
            os.chmod(copy, 0o600)
            subprocess.run(["ssh-add", "-q", copy], env={"SSH_AUTH_SOCK": self.sock}, check=True,
                           capture_output=True, **as_user(self.user))
            os.unlink(copy)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


class Sha1Agent(threading.Thread):
    """An agent that answers every sign request with an ssh-rsa (SHA-1) signature.

    A real ssh-agent honours the rsa-sha2-512 flag, so this speaks the agent
    protocol itself (SSH_AGENTC_REQUEST_IDENTITIES / SIGN_REQUEST) to show that
    such an answer is refused.
    """

    def __init__(self, sock_path, private_key_path, owner_uid):
        super().__init__(daemon=True)
        import base64

        from cryptography.hazmat.primitives.serialization import load_ssh_private_key
        with open(private_key_path, "rb") as fh:
            self.key = load_ssh_private_key(fh.read(), None)
        with open(private_key_path + ".pub") as fh:
            self.blob = base64.b64decode(fh.read().split()[1])
        self.path = sock_path
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(sock_path)
        os.chown(sock_path, owner_uid, -1)
        self.srv.listen(8)
        self.start()

    def run(self):
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            with conn:
                try:
                    self._serve(conn)
                except (OSError, struct.error):
                    pass

    def _serve(self, conn):
        def read(n):
            buf = b""
            while len(buf) < n:
                chunk = conn.recv(n - len(buf))
                if not chunk:
                    raise OSError("closed")
                buf += chunk
            return buf

        def string(b):
            return struct.pack(">I", len(b)) + b
        while True:
            n = struct.unpack(">I", read(4))[0]
            msg = read(n)
            if msg[0] == 11:
                body = bytes([12]) + struct.pack(">I", 1) + string(self.blob) + string(b"sha1")
            elif msg[0] == 13:
                blen = struct.unpack(">I", msg[1:5])[0]
                dlen = struct.unpack(">I", msg[5 + blen:9 + blen])[0]
                data = msg[9 + blen:9 + blen + dlen]
                from cryptography.hazmat.primitives import hashes
                from cryptography.hazmat.primitives.asymmetric import padding
                raw = self.key.sign(data, padding.PKCS1v15(), hashes.SHA1())
                sig = string(b"ssh-rsa") + string(raw)
                body = bytes([14]) + string(sig)
            else:
                body = bytes([5])
            conn.sendall(struct.pack(">I", len(body)) + body)

    def stop(self):
        self.srv.close()
