"""``otpme-auth helper``: the root service that checks a calling user's own credentials.

pam_unix has ``unix_chkpwd``, SSSD its PAM responder; this is ours.  A PAM module
that runs as the user (a screen locker) cannot read the host key (``host.key``,
0600 root) nor the offline cache (root 0700): it sends the password here, on a
Unix socket, and gets back one word (see :mod:`.protocol`).

* **Whose credentials**: the kernel's peer credentials of the connection
  (SO_PEERCRED) name the caller's uid; the request's ``user`` must be that uid's
  name, or the answer is ``refused`` without any check.  There is no way to ask
  about another user, for root neither.
* **What checks**: one login through the same host and plugins as the PAM
  module, as root, with the helper's own line (``otpme-auth helper -- LINE``;
  default ``cache_login_tokens``: online, the offline cache when no server
  answers).  Nothing of the request chooses a file, a server or an option.
* **Rate limit**: per user, counted *before* the check (so parallel attempts are
  counted too): after ``free`` failures in a row each attempt must wait
  ``base * 2**(failures - free)`` seconds (capped) after the previous one, else
  ``throttled`` without a check.  A success resets it; ``unavailable`` and
  ``error`` give the attempt back (they say nothing about the password).
* **Never a secret back**: the reply is ``ok``/``denied``/... and a flag; the
  details go to the helper's own log (syslog, and ``log_file=`` of its line).

Sockets: systemd's (``LISTEN_FDS``, from ``otpme-auth-helper.socket``), else
``--socket PATH`` is created (its directory 0755 root, the socket 0666: every
user may ask, about themselves only).
"""

import os
import socket
import struct
import threading
import time

from . import DEFAULT_SOCKET
from .protocol import MAX_REQUEST, ProtocolError, encode_reply, parse_request

DEFAULT_LINE = ("cache_login_tokens",)
SERVICE = "otpme-auth-helper"
SD_LISTEN_FDS_START = 3


class Throttle:
    """Failures per user, in memory, counted before the check."""

    def __init__(self, free=3, base=5, cap=900, clock=time.monotonic):
        self.free, self.base, self.cap, self.clock = free, base, cap, clock
        self._lock = threading.Lock()
        self._state = {}   # user -> [failures, time of the last counted attempt]

    def begin(self, user):
        """Count an attempt; returns 0 if it may be checked, else the seconds to wait."""
        with self._lock:
            failures, last = self._state.get(user, (0, 0.0))
            now = self.clock()
            if failures >= self.free:
                wait = min(self.cap, self.base * 2 ** (failures - self.free))
                if now < last + wait:
                    return max(1, int(last + wait - now + 0.999))
            self._state[user] = [failures + 1, now]
            return 0

    def succeeded(self, user):
        with self._lock:
            self._state.pop(user, None)

    def give_back(self, user):
        with self._lock:
            state = self._state.get(user)
            if state and state[0] > 0:
                state[0] -= 1


class _Answers:
    """The conversation of a helper login: the password for the first prompt, nothing else."""

    def __init__(self, password):
        from ..conversation import ScriptedConversation
        self.conversation = ScriptedConversation([password.reveal()])


def peer_uid(conn):
    """The uid of the process at the other end (the kernel's word, not the request's)."""
    data = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", data)
    return uid


class Helper:
    """Answers requests; ``serve(sock)`` runs until :meth:`stop`."""

    def __init__(self, line=DEFAULT_LINE, throttle=None, registry=None, max_connections=64,
                 max_checks=4, read_timeout=5.0, log=None, site_dirs=None,
                 cache_dir="/var/cache/otpme-auth", max_per_uid=8, default_verifiers=None):
        from ..log import Log
        self.line = list(line)
        if default_verifiers is None:   # as the entry script install-pam writes
            from ..install import DEFAULT_VERIFIERS as default_verifiers
        self.default_verifiers = tuple(default_verifiers)
        self.throttle = throttle or Throttle()
        self.registry = registry
        self.read_timeout = read_timeout
        self.log = log or Log(SERVICE)
        from ..login import _early_log_options
        _early_log_options(self.line, self.log)   # log_file= of the line: the service's lines too
        self.site_dirs = site_dirs
        self.cache_dir = cache_dir
        self._connections = threading.BoundedSemaphore(max_connections)
        self._checks = threading.BoundedSemaphore(max_checks)
        self._stop = threading.Event()
        self.max_per_uid = max_per_uid      # one user cannot take every connection
        self._rejects = threading.BoundedSemaphore(max_per_uid)   # "throttled" answers
        self._in_flight = {}                # uid -> connections being answered
        self._log_lock = threading.Lock()

    # -- one request -----------------------------------------------------

    def handle(self, conn, uid):
        """Read one request of ``uid`` (counted by :meth:`_enter`) from ``conn``, answer it,
        close it."""
        try:
            conn.settimeout(self.read_timeout)
            try:
                try:
                    data = _read_request(conn)
                except (OSError, ProtocolError) as exc:
                    self._say("warning", "request of uid %d not read: %s" % (uid, exc))
                    return
                reply = self.answer(uid, data)
            finally:
                self._leave(uid)
            try:
                conn.sendall(reply)
            except OSError:
                pass
        finally:
            conn.close()

    def _enter(self, uid):
        with self._log_lock:
            if self._in_flight.get(uid, 0) >= self.max_per_uid:
                return False
            self._in_flight[uid] = self._in_flight.get(uid, 0) + 1
            return True

    def _leave(self, uid):
        with self._log_lock:
            self._in_flight[uid] -= 1
            if not self._in_flight[uid]:
                del self._in_flight[uid]

    def answer(self, uid, data):
        """The reply bytes for ``data`` sent by a process of ``uid``."""
        import pwd
        if not data:   # connected and closed (a probe): nothing was asked
            self._say("debug", "uid %d connected and sent nothing" % uid)
            return encode_reply("refused")
        try:
            request = parse_request(data)
        except ProtocolError as exc:
            self._say("warning", "uid %d sent a bad request: %s" % (uid, exc))
            return encode_reply("refused")
        try:
            own = pwd.getpwuid(uid).pw_name
        except KeyError:
            own = None
        if own is None or own != request.user:
            self._say("warning", "uid %d (%s) asked about %s: refused, only the caller's own "
                      "credentials are checked" % (uid, own or "no user", _printable(request.user)))
            return encode_reply("refused")
        wait = self.throttle.begin(request.user)
        if wait:
            self._say("warning", "%s (service %s): throttled, %d s to wait after repeated "
                      "failures; not checked" % (request.user, request.service, wait))
            return encode_reply("throttled", retry_after=min(wait, 86400))
        with self._checks:
            code, offline = self._check(request)
        if code == "SUCCESS":
            self.throttle.succeeded(request.user)
            return encode_reply("ok", offline=offline)
        if code in ("AUTH_ERR", "CRED_INSUFFICIENT", "PERM_DENIED", "MAXTRIES"):
            return encode_reply("denied")
        self.throttle.give_back(request.user)
        if code == "AUTHINFO_UNAVAIL":
            return encode_reply("unavailable")
        return encode_reply("error")

    def _check(self, request):
        from ..context import PamItems
        from ..log import Log
        from ..login import run
        log = Log("%s/%s" % (SERVICE, request.service), to_syslog=self.log.to_syslog)
        log.add_secret(request.password.reveal())
        outcome = run("authenticate", self.line, request.user, SERVICE,
                      _Answers(request.password).conversation, PamItems(), registry=self.registry,
                      cache_dir=self.cache_dir, log=log, site_dirs=self.site_dirs,
                      default_verifiers=self.default_verifiers)
        offline = bool(outcome.ctx is not None and outcome.ctx.offline)
        return outcome.code, offline

    def _say(self, level, text):
        with self._log_lock:
            getattr(self.log, level)(text)
            del self.log.records[:-200]   # a long-running service keeps only the last lines

    # -- serving -----------------------------------------------------------

    def serve(self, sock):
        """Accept connections on ``sock`` until :meth:`stop`; one thread per connection."""
        sock.settimeout(0.5)
        while not self._stop.is_set():
            try:
                conn, _ = sock.accept()
            except socket.timeout:
                continue
            except OSError as exc:
                if self._stop.is_set():
                    break
                self._say("error", "accept failed: %s" % exc)
                time.sleep(0.1)
                continue
            conn.setblocking(True)
            try:
                uid = peer_uid(conn)
            except OSError as exc:
                self._say("warning", "no peer credentials: %s" % exc)
                conn.close()
                continue
            # A uid over its share is answered here, before it takes one of the service's
            # connections: one user holding connections open cannot starve the others.
            if not self._enter(uid):
                self._say("warning", "uid %d: more than %d requests at once; throttled, "
                          "not checked" % (uid, self.max_per_uid))
                if self._rejects.acquire(blocking=False):   # read it, answer "throttled"
                    threading.Thread(target=self._reject, args=(conn,), daemon=True).start()
                else:
                    conn.close()
                continue
            if not self._connections.acquire(blocking=False):
                self._leave(uid)
                _answer_now(conn, encode_reply("unavailable"))
                continue
            threading.Thread(target=self._run_one, args=(conn, uid), daemon=True).start()

    def _reject(self, conn):
        """Answer ``throttled`` to a connection over its uid's share.  The request is read
        first (unread data would reset the connection and lose the reply); these
        threads have their own small pool, not the service's connections."""
        try:
            conn.settimeout(self.read_timeout)
            try:
                _read_request(conn)
                conn.sendall(encode_reply("throttled", retry_after=1))
            except (OSError, ProtocolError):
                pass
        finally:
            conn.close()
            self._rejects.release()

    def _run_one(self, conn, uid):
        try:
            self.handle(conn, uid)
        except Exception as exc:  # never take the service down for one request
            self._say("error", "internal error: %s: %s" % (type(exc).__name__, exc))
        finally:
            self._connections.release()

    def stop(self):
        self._stop.set()


def _answer_now(conn, reply):
    """Reply without reading the request and close (the client may see a reset instead of
    the reply; for ``unavailable`` its verdict is the same)."""
    try:
        conn.settimeout(1.0)
        conn.sendall(reply)
    except OSError:
        pass
    conn.close()


def _read_request(conn):
    """The whole request within the socket's timeout in total, not per ``recv``: a peer
    sending a byte now and then cannot hold a slot for longer."""
    budget = conn.gettimeout()
    deadline = None if budget is None else time.monotonic() + budget
    data = b""
    while True:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("the request took longer than %.0f s" % budget)
            conn.settimeout(left)
        chunk = conn.recv(MAX_REQUEST + 1 - len(data))
        if not chunk:
            return data
        data += chunk
        if len(data) > MAX_REQUEST:
            raise ProtocolError("the request is longer than %d bytes" % MAX_REQUEST)


def _printable(text):
    return repr(text[:64])


def listen_socket(path):
    """The service's socket: systemd's if it passed one (LISTEN_FDS), else ``path`` bound.

    A path is created as systemd's ``otpme-auth-helper.socket`` would: the directory
    0755 root, the socket 0666 (every user may connect; whose credentials are checked
    is decided by the peer credentials).
    """
    fds = os.environ.get("LISTEN_FDS")
    if fds and os.environ.get("LISTEN_PID") == str(os.getpid()):
        if fds != "1":
            raise SystemExit("otpme-auth helper: expected one socket from systemd, got %s" % fds)
        for name in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
            os.environ.pop(name, None)
        sock = socket.socket(fileno=SD_LISTEN_FDS_START)
        if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
            raise SystemExit("otpme-auth helper: systemd's socket is not a Unix stream socket")
        return sock
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    st = os.stat(directory, follow_symlinks=False)
    if st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise SystemExit("otpme-auth helper: %s must be owned by uid %d and writable by no one "
                         "else" % (directory, os.geteuid()))
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o111)   # bind() creates the socket 0666 at once: no window with other modes
    try:
        sock.bind(path)
    finally:
        os.umask(old)
    sock.listen(64)
    return sock


def add_command(subparsers):
    p = subparsers.add_parser(
        "helper", help="run the root service that checks a calling user's own credentials "
        "(for screen lockers; started by otpme-auth-helper.socket)")
    p.add_argument("line", nargs="*", metavar="OPTION",
                   help="the options of the line the helper checks with (default: %s)"
                   % " ".join(DEFAULT_LINE))
    p.add_argument("--socket", default=DEFAULT_SOCKET,
                   help="the socket to create when systemd passes none (default: %(default)s)")
    p.add_argument("--cache-dir", default="/var/cache/otpme-auth",
                   help="the plugin registry cache (default: %(default)s)")
    p.add_argument("--free", type=int, default=3, help="failures allowed before waiting (3)")
    p.add_argument("--base", type=int, default=5, help="the first wait, doubled per failure (5 s)")
    p.add_argument("--cap", type=int, default=900, help="the longest wait (900 s)")
    p.set_defaults(run=run_helper)


def run_helper(args, out):
    import signal
    import sys
    from ..log import Log
    from ..options import split_line
    if os.geteuid() != 0:
        sys.stderr.write("otpme-auth helper: must run as root (it reads the host key and the "
                         "offline cache for the users who ask)\n")
        return 2
    words = split_line(" ".join(args.line)) if args.line else list(DEFAULT_LINE)
    log = Log(SERVICE, to_syslog=True)
    helper = Helper(words, Throttle(args.free, args.base, args.cap), log=log,
                    cache_dir=args.cache_dir)
    sock = listen_socket(args.socket)
    signal.signal(signal.SIGTERM, lambda *_: helper.stop())
    out.write("otpme-auth helper: listening; line: %s\n" % " ".join(words))
    out.flush()
    try:
        helper.serve(sock)
    except KeyboardInterrupt:
        pass
    return 0
