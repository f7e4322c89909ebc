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
* :func:`sign` asks the agent (paramiko's agent client) to sign with one key;
  RSA keys always with ``rsa-sha2-512`` (never ``ssh-rsa``, SHA-1).
* :func:`verify` checks a signature blob against a public key blob, refusing
  any algorithm but ssh-ed25519, ecdsa-sha2-nistp256/384/521 and
  rsa-sha2-256/512.

paramiko is imported only here, and only when an agent is actually asked.
"""

import base64
import os
import socket
import stat

#: Key types we use, and the signature algorithms each may answer with.
KEY_ALGORITHMS = {
    "ssh-ed25519": ("ssh-ed25519",),
    "ecdsa-sha2-nistp256": ("ecdsa-sha2-nistp256",),
    "ecdsa-sha2-nistp384": ("ecdsa-sha2-nistp384",),
    "ecdsa-sha2-nistp521": ("ecdsa-sha2-nistp521",),
    "ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256"),
}
MIN_RSA_BITS = 2048
AGENT_TIMEOUT = 30.0  # seconds: an agent may ask its user to confirm a signature


class AgentError(Exception):
    """The agent could not be used; the text says why (for the log, no secret in it)."""


def find_socket(pam_env_value, environ=None):
    """``SSH_AUTH_SOCK``: the PAM environment's first, then the application's."""
    environ = os.environ if environ is None else environ
    return pam_env_value or environ.get("SSH_AUTH_SOCK") or None


def _ssh_string(buf, pos):
    if pos + 4 > len(buf):
        raise ValueError("short ssh string")
    n = int.from_bytes(buf[pos:pos + 4], "big")
    if pos + 4 + n > len(buf):
        raise ValueError("short ssh string")
    return buf[pos + 4:pos + 4 + n], pos + 4 + n


def key_type(blob):
    """The type name that starts an ssh public key blob."""
    name, _ = _ssh_string(blob, 0)
    return name.decode("ascii", "replace")


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


class Agent:
    """The keys of one agent connection (paramiko's agent client over our socket)."""

    def __init__(self, sock):
        from paramiko.agent import AgentSSH
        from paramiko.ssh_exception import SSHException
        self._agent = AgentSSH()
        try:
            self._agent._connect(sock)
        except (SSHException, OSError) as exc:
            sock.close()
            raise AgentError("the agent did not list its keys: %s" % exc) from None

    def keys(self):
        """[(type, blob, agent key)] of the keys we accept (types and RSA size)."""
        out = []
        for k in self._agent.get_keys():
            t = k.get_name()
            if t not in KEY_ALGORITHMS:
                continue
            if t == "ssh-rsa":
                try:
                    if k.get_bits() < MIN_RSA_BITS:
                        continue
                except Exception:  # noqa: BLE001 - a key paramiko cannot size is not used
                    continue
            out.append((t, k.blob, k))
        return out

    def find(self, blob):
        """The agent's key with this public blob, or None."""
        for t, b, k in self.keys():
            if b == blob:
                return k
        return None

    def sign(self, key, data):
        """The agent's signature blob (``string algo, string sig``) over ``data``."""
        from paramiko.ssh_exception import SSHException
        algorithm = "rsa-sha2-512" if key.get_name() == "ssh-rsa" else None
        try:
            return key.sign_ssh_data(data, algorithm)
        except (SSHException, OSError) as exc:
            raise AgentError("the agent refused to sign with the %s key: %s"
                             % (key.get_name(), exc)) from None

    def close(self):
        self._agent._close()


def verify(public_blob, data, sig_blob):
    """Check ``sig_blob`` over ``data`` with the key ``public_blob``.

    :returns: None when the signature is good.
    :raises AgentError: saying why not (the algorithm, ssh-rsa SHA-1, a bad signature).
    """
    try:
        ktype = key_type(public_blob)
        algo, _ = _ssh_string(sig_blob, 0)
        algo = algo.decode("ascii", "replace")
    except ValueError:
        raise AgentError("malformed signature or key") from None
    allowed = KEY_ALGORITHMS.get(ktype)
    if allowed is None:
        raise AgentError("key type %s is not accepted" % ktype[:40])
    if algo not in allowed:
        if algo == "ssh-rsa":
            raise AgentError("an ssh-rsa (SHA-1) signature: refused, only rsa-sha2-256/512")
        raise AgentError("signature algorithm %s does not fit a %s key" % (algo[:40], ktype))
    from paramiko.message import Message
    from paramiko.pkey import PKey
    try:
        key = PKey.from_type_string(ktype, public_blob)
        good = key.verify_ssh_sig(data, Message(sig_blob))
    except Exception:  # noqa: BLE001 - any parse failure is a bad signature
        good = False
    if not good:
        raise AgentError("the signature does not verify with the %s key" % ktype)
