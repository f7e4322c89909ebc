"""The login path's side of the helper: a stand-in verifier for a module that is not root.

A screen locker runs PAM as the user.  The plugins that need root to verify (they
set ``OTPME_AUTH_NEEDS_ROOT``: online reads the host key, offline the root-only
cache) cannot work there, so :func:`stand_in` replaces them, for ``authenticate``,
by one plugin named ``helper`` that asks the password (``Password: ``, or
``authtok_prompt``) and sends it to the root helper on ``helper_socket``
(:mod:`.service`), which checks it online or from the offline cache with its own
line.  The other plugins of the line run as usual.

What the helper answers becomes a decision; a helper that is not running, or a
socket this process may not use, is a *local* problem and is logged as such
(never as "server unreachable"), and the login fails closed (PAM_AUTHINFO_UNAVAIL).
"""

import os

from ..context import Key
from ..hookspecs import hookimpl
from ..results import allow, deny, unavailable

NAME = "helper"
#: How long to wait for the helper's answer: its line's connect and answer timeouts
#: and the key derivation all fit in it.
TIMEOUT = 90.0
_OFFLINE = Key("helper.offline", "the helper's ok came from the offline cache", bool)


class _StandIn:
    """The hooks of the stand-in (an object, so it is registered like any plugin)."""

    def __init__(self, replaced):
        self.replaced = tuple(replaced)

    @hookimpl
    def otpme_auth_collect_credentials(self, ctx):
        ctx.ask_authtok("Password: ")

    @hookimpl
    def otpme_auth_verify(self, ctx):
        from ..context import PASSWORD
        return ask(ctx, ctx.core.helper_socket, ctx.credentials[PASSWORD], self.replaced)

    @hookimpl
    def otpme_auth_post_login(self, ctx):
        if ctx.stash.get(_OFFLINE):
            ctx.offline = True   # for offline_greeting and the outcome line, as in a root login
        return None


def stand_in(plugins, log):
    """``plugins`` with those that need root replaced by the helper (at the first one's place)."""
    from ..host import load_plugin
    from ..options import OptionsView
    privileged = [p.name for p in plugins if getattr(p.obj, "OTPME_AUTH_NEEDS_ROOT", False)]
    if not privileged:
        return plugins
    log.debug("running as uid %d: %s verify through the helper" % (os.geteuid(), ", ".join(privileged)))
    helper = load_plugin(NAME, _StandIn(privileged), OptionsView(NAME, {}, {}))
    out, placed = [], False
    for plugin in plugins:
        if plugin.name in privileged:
            if not placed:
                out.append(helper)
                placed = True
            continue
        out.append(plugin)
    return out


def ask(ctx, path, password, replaced=()):
    """Send the request, map the reply to a :class:`~otpme_auth.results.Decision`."""
    import socket

    from .protocol import MAX_REPLY, ProtocolError, encode_request, parse_reply
    uid = os.geteuid()
    try:
        request = encode_request(ctx.user, _service(ctx.service), password.reveal())
    except ProtocolError as exc:
        return deny("the helper cannot be asked: %s" % exc, final=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(TIMEOUT)
        try:
            sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            return unavailable(
                "local error, not a server problem: the otpme-auth helper is not running (%s: %s); "
                "this module runs as uid %d and cannot read the host key or the offline cache "
                "itself. Start it: systemctl enable --now otpme-auth-helper.socket"
                % (path, exc.strerror, uid),
                user_message="Your password cannot be checked now: the authentication helper "
                             "is not running.")
        except PermissionError as exc:
            return unavailable("local permission error, not a server problem: uid %d may not use "
                               "the helper's socket %s (%s)" % (uid, path, exc.strerror))
        try:
            try:
                sock.sendall(request)
                sock.shutdown(socket.SHUT_WR)
            except (BrokenPipeError, ConnectionResetError):
                pass   # it answered without reading (a throttle): the reply is still there
            data = b""
            while len(data) <= MAX_REPLY:
                chunk = sock.recv(MAX_REPLY + 1 - len(data))
                if not chunk:
                    break
                data += chunk
        except socket.timeout:
            return unavailable("the helper did not answer within %d s" % TIMEOUT)
        except OSError as exc:
            return unavailable("the helper closed the connection: %s" % (exc.strerror or exc))
    finally:
        sock.close()
    try:
        reply = parse_reply(data)
    except ProtocolError as exc:
        return deny("the helper's reply is not valid (%s): failing closed" % exc, final=True)
    if reply.result == "ok":
        ctx.stash[_OFFLINE] = reply.offline
        return allow("the helper accepted it %s" % ("from the offline cache" if reply.offline
                                                    else "online"), covers=replaced)
    if reply.result == "denied":
        return deny("the helper refused the credentials (its log says why)")
    if reply.result == "throttled":
        return deny("the helper throttles %s after repeated failures: %d s to wait"
                    % (ctx.user, reply.retry_after), final=True,
                    user_message="Too many failed attempts: try again in %d seconds."
                    % reply.retry_after)
    if reply.result == "unavailable":
        return unavailable("the helper could not check: no server answered and no offline cache "
                           "stood in (its log says why)")
    if reply.result == "refused":
        return deny("the helper refused the request: a process may check only its own user's "
                    "credentials (this one runs as uid %d; the login is for %s)" % (uid, ctx.user),
                    final=True)
    return deny("the helper failed closed (its log says why)", final=True)


def _service(name):
    from .protocol import _SERVICE_CHARS
    name = "".join(c if c in _SERVICE_CHARS else "_" for c in (name or "?"))[:64]
    return name or "_"
