"""Reaching the user's ssh-agent safely, asking it to sign, checking what it signed.

* :func:`find_socket` takes ``SSH_AUTH_SOCK`` from the PAM environment, else
  from the application's environment.
* :func:`connect` walks the path one component at a time (``openat`` with
  ``O_NOFOLLOW``): a symlink anywhere in the path is refused, not followed; the
  last component must be a socket owned by the user being authenticated (or by
  root).  When we run as root for another user, the walk and the ``connect`` run
  with the user's effective uid, gid and groups, so the kernel checks that the
  user could reach that socket (root is not tricked into using a socket the user
  cannot use).
* :class:`Agent` speaks the agent protocol itself (``REQUEST_IDENTITIES``,
  ``SIGN_REQUEST``: a few bytes each way, no library); RSA keys are always asked
  for ``rsa-sha2-512`` (never ``ssh-rsa``, SHA-1).
* :func:`verify` checks a signature blob against a public key blob, refusing
  any algorithm but ssh-ed25519, ecdsa-sha2-nistp256/384/521 and
  rsa-sha2-256/512.

No paramiko; cryptography is imported only to check a signature (:func:`verify`).
"""

import base64
import os
import socket
import stat

from otpme_auth import sshsig
from otpme_auth.sshsig import key_type, pack_string, read_string

#: Key types we use, and the signature algorithms each may answer with.
KEY_ALGORITHMS = sshsig.ALGORITHMS
MIN_RSA_BITS = 2048
AGENT_TIMEOUT = 30.0  # seconds: an agent may ask its user to confirm a signature


class AgentError(Exception):
    """The agent could not be used; the text says why (for the log, no secret in it)."""


def find_socket(pam_env_value, environ=None):
    """``SSH_AUTH_SOCK``: the PAM environment's first, then the application's."""
    environ = os.environ if environ is None else environ
    return pam_env_value or environ.get("SSH_AUTH_SOCK") or None


def parse_public_key(text):
    """``"ssh-ed25519 AAAA... comment"`` -> (type, blob); ValueError if it is not one."""
    parts = text.split()
    if len(parts) < 2:
        raise ValueError("not an OpenSSH public key")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (ValueError, TypeError):
        raise ValueError("the key is not base64") from None
    if key_type(blob) != parts[0]:
        raise ValueError("the key's type does not match its data")
    return parts[0], blob


class _Identity:
    """Run a block with the user's effective uid/gid/groups (when we are root)."""

    def __init__(self, uid, gid, user):
        self.switch = os.geteuid() == 0 and uid != 0
        self.uid, self.gid, self.user = uid, gid, user

    def __enter__(self):
        if self.switch:
            self.saved = (os.getegid(), os.getgroups())
            os.setgroups(os.getgrouplist(self.user, self.gid))
            os.setegid(self.gid)
            os.seteuid(self.uid)
        return self

    def __exit__(self, *exc):
        if self.switch:
            os.seteuid(0)
            os.setegid(self.saved[0])
            os.setgroups(self.saved[1])
        return False


def _open_nofollow(path):
    """An O_PATH descriptor for ``path``, refusing a symlink in any component."""
    if not path.startswith("/"):
        raise AgentError("SSH_AUTH_SOCK %r is not an absolute path" % path)
    parts = [p for p in path.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise AgentError("SSH_AUTH_SOCK %r is not a plain path" % path)
    fd = os.open("/", os.O_PATH | os.O_DIRECTORY)
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            try:
                nfd = os.open(part, os.O_PATH | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                raise AgentError("cannot reach the agent socket %s: %s at %r" % (
                    path, exc.strerror, "/" + "/".join(parts[:i + 1]))) from None
            os.close(fd)
            fd = nfd
            st = os.fstat(fd)
            if stat.S_ISLNK(st.st_mode):
                raise AgentError("the agent socket path %s has a symlink at %r: refused (not "
                                 "followed)" % (path, "/" + "/".join(parts[:i + 1])))
            if not last and not stat.S_ISDIR(st.st_mode):
                raise AgentError("the agent socket path %s: %r is not a directory"
                                 % (path, "/" + "/".join(parts[:i + 1])))
        return fd, st
    except BaseException:
        os.close(fd)
        raise


def connect(path, uid, gid, user, timeout=AGENT_TIMEOUT):
    """A connected socket to the agent at ``path``, after the checks of this module."""
    with _Identity(uid, gid, user):
        fd, st = _open_nofollow(path)
        try:
            if not stat.S_ISSOCK(st.st_mode):
                raise AgentError("SSH_AUTH_SOCK %s is not a socket" % path)
            if st.st_uid not in (uid, 0):
                raise AgentError("the agent socket %s belongs to uid %d, not to %s (uid %d) "
                                 "or root: refused" % (path, st.st_uid, user, uid))
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                # The very inode we checked, not whatever the path names now.
                sock.connect("/proc/self/fd/%d" % fd)
            except OSError as exc:
                sock.close()
                raise AgentError("cannot connect to the agent at %s: %s" % (path, exc.strerror)) \
                    from None
            return sock
        finally:
            os.close(fd)


#: The agent protocol (draft-miller-ssh-agent): the few messages we use.
_REQUEST_IDENTITIES, _IDENTITIES_ANSWER = 11, 12
_SIGN_REQUEST, _SIGN_RESPONSE = 13, 14
_FAILURE = 5
_RSA_SHA2_512 = 4  # SSH_AGENT_RSA_SHA2_512 sign flag
MAX_MESSAGE = 256 * 1024
MAX_KEYS = 1000


def rsa_bits(blob):
    """The modulus size of an ``ssh-rsa`` public key blob (``string t, mpint e, mpint n``)."""
    _, pos = read_string(blob, 0)
    _, pos = read_string(blob, pos)
    n, _ = read_string(blob, pos)
    return int.from_bytes(n, "big").bit_length()


class Agent:
    """One agent connection, speaking the agent protocol itself (a few bytes each way).

    Listing the keys (``REQUEST_IDENTITIES``) and signing (``SIGN_REQUEST``) need no
    library: no paramiko, nor cryptography, on the login path (issue 13 point 4).
    """

    def __init__(self, sock):
        self._sock = sock
        self._keys = None

    def _call(self, body):
        try:
            self._sock.sendall(len(body).to_bytes(4, "big") + body)
            head = self._recv(4)
            n = int.from_bytes(head, "big")
            if not 0 < n <= MAX_MESSAGE:
                raise AgentError("the agent sent a message of %d bytes" % n)
            return self._recv(n)
        except OSError as exc:
            raise AgentError("the agent connection failed: %s" % (exc.strerror or exc)) from None

    def _recv(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self._sock.recv(n - len(buf))
            if not chunk:
                raise AgentError("the agent closed the connection")
            buf += chunk
        return buf

    def keys(self):
        """[(type, blob, blob)] of the keys we accept (types and RSA size), asked once."""
        if self._keys is not None:
            return self._keys
        answer = self._call(bytes([_REQUEST_IDENTITIES]))
        if answer[0] != _IDENTITIES_ANSWER:
            raise AgentError("the agent did not list its keys (answer type %d)" % answer[0])
        try:
            count = int.from_bytes(answer[1:5], "big")
            if len(answer) < 5 or count > MAX_KEYS:
                raise ValueError("bad key count")
            pos, out = 5, []
            for _ in range(count):
                blob, pos = read_string(answer, pos)
                _, pos = read_string(answer, pos)  # the comment
                t = key_type(blob)
                if t not in KEY_ALGORITHMS:
                    continue
                if t == "ssh-rsa" and rsa_bits(blob) < MIN_RSA_BITS:
                    continue
                out.append((t, blob, blob))
        except ValueError:
            raise AgentError("the agent's key list is malformed") from None
        self._keys = out
        return out

    def find(self, blob):
        """The agent's key with this public blob, or None."""
        for t, b, k in self.keys():
            if b == blob:
                return k
        return None

    def sign(self, key, data):
        """The agent's signature blob (``string algo, string sig``) over ``data``.

        RSA keys are asked for rsa-sha2-512 (never ssh-rsa, SHA-1).
        """
        flags = _RSA_SHA2_512 if key_type(key) == "ssh-rsa" else 0
        answer = self._call(bytes([_SIGN_REQUEST]) + pack_string(key) + pack_string(data)
                            + flags.to_bytes(4, "big"))
        if answer[0] != _SIGN_RESPONSE:
            raise AgentError("the agent refused to sign with the %s key" % key_type(key))
        try:
            signature, _ = read_string(answer, 1)
        except ValueError:
            raise AgentError("the agent's signature answer is malformed") from None
        return signature

    def close(self):
        self._sock.close()


def check_algorithm(public_blob, sig_blob):
    """The signature's algorithm if it is one we accept for this key, else AgentError
    (ssh-rsa SHA-1 said so).  Needs no cryptography: what an answer to a remote
    verifier (the server, the offline cache) is checked with before it is sent."""
    try:
        return sshsig.check_algorithm(key_type(public_blob), sig_blob)
    except ValueError as exc:  # SignatureRefused is one
        raise AgentError(str(exc) if isinstance(exc, sshsig.SignatureRefused)
                         else "malformed signature or key") from None


def verify(public_blob, data, sig_blob):
    """Check ``sig_blob`` over ``data`` with the key ``public_blob``.

    :returns: None when the signature is good.
    :raises AgentError: saying why not (the algorithm, ssh-rsa SHA-1, a bad signature).
    """
    try:
        sshsig.verify(public_blob, sig_blob, data)
    except sshsig.SignatureRefused as exc:
        raise AgentError(str(exc)) from None
    return False
