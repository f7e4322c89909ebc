"""The helper's protocol: one request, one reply, on a Unix stream socket.

The client connects, sends one request (at most :data:`MAX_REQUEST` bytes) and
shuts its side down; the service answers with one reply and closes.  Both are
one JSON object in UTF-8, and both are parsed strictly: exactly the keys below,
each of its type (``true`` is not an integer), no duplicate key, no NaN or
infinity, nothing after the object.  Anything else is :class:`ProtocolError`.

Request::

    {"v": 1, "user": "alice", "service": "i3lock", "password": "..."}

``user`` is checked against the caller's kernel peer credentials (SO_PEERCRED),
never trusted; ``service`` (the PAM service name) is for the helper's log only.

Reply (no secret, ever: no token data, no server answer, no reason text)::

    {"v": 1, "result": "ok", "offline": false, "retry_after": 0}

``result`` is one of :data:`RESULTS`; ``offline`` tells an ``ok`` that came from
the offline cache; ``retry_after`` is the seconds a ``throttled`` caller waits.
"""

VERSION = 1
MAX_REQUEST = 4096
MAX_REPLY = 256
MAX_USER = 256
MAX_SERVICE = 64
MAX_PASSWORD = 1024
#: ok: accepted; denied: refused (wrong credentials, or the server refused); unavailable:
#: no server answered and no offline cache could stand in; throttled: too many failures of
#: this user, nothing was checked; refused: not the caller's own user, or a bad request;
#: error: the helper failed closed (its log says why).
RESULTS = ("ok", "denied", "unavailable", "throttled", "refused", "error")
_SERVICE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@+")


class ProtocolError(ValueError):
    """A request or reply that is not exactly what the protocol allows."""


def _strict_json(data, limit):
    import json
    if not isinstance(data, (bytes, bytearray)):
        raise ProtocolError("not bytes")
    if len(data) > limit:
        raise ProtocolError("longer than %d bytes" % limit)
    try:
        text = bytes(data).decode("utf-8", "strict")
    except UnicodeDecodeError:
        raise ProtocolError("not UTF-8") from None

    def pairs(items):
        keys = [k for k, _ in items]
        if len(set(keys)) != len(keys):
            raise ProtocolError("a key is given twice")
        return dict(items)

    def constant(name):
        raise ProtocolError("%s is not allowed" % name)

    try:
        value = json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except ProtocolError:
        raise
    except (ValueError, RecursionError):
        raise ProtocolError("not one JSON object") from None
    if not isinstance(value, dict):
        raise ProtocolError("not a JSON object")
    return value


def _keys(value, expected):
    if set(value) != set(expected):
        raise ProtocolError("keys must be exactly %s" % ", ".join(sorted(expected)))


def _text(value, name, minimum, maximum):
    if type(value) is not str:
        raise ProtocolError("%s must be a string" % name)
    if not minimum <= len(value) <= maximum:
        raise ProtocolError("%s must have %d to %d characters" % (name, minimum, maximum))
    if "\0" in value:
        raise ProtocolError("%s contains NUL" % name)
    return value


class Request:
    """A parsed request.  ``password`` is a :class:`~otpme_auth.context.Secret`."""

    __slots__ = ("user", "service", "password")

    def __init__(self, user, service, password):
        self.user, self.service, self.password = user, service, password

    def __repr__(self):
        return "<Request user=%r service=%r>" % (self.user, self.service)


def encode_request(user, service, password):
    """The request bytes; ``password`` is text (revealed by the caller)."""
    import json
    for name, value, limit in (("user", user, MAX_USER), ("service", service, MAX_SERVICE)):
        _text(value, name, 1, limit)
    _text(password, "password", 0, MAX_PASSWORD)
    if not _valid_user(user):
        raise ProtocolError("user has a character a user name cannot have")
    if not set(service) <= _SERVICE_CHARS:
        raise ProtocolError("service has characters other than letters, digits and ._-@+")
    data = json.dumps({"v": VERSION, "user": user, "service": service, "password": password},
                      separators=(",", ":")).encode("utf-8")
    if len(data) > MAX_REQUEST:
        raise ProtocolError("the request would be longer than %d bytes" % MAX_REQUEST)
    return data


def parse_request(data):
    """Bytes -> :class:`Request`, or :class:`ProtocolError` (the text never holds the password)."""
    from ..context import Secret
    value = _strict_json(data, MAX_REQUEST)
    _keys(value, ("v", "user", "service", "password"))
    if type(value["v"]) is not int or value["v"] != VERSION:
        raise ProtocolError("v must be %d" % VERSION)
    user = _text(value["user"], "user", 1, MAX_USER)
    if not _valid_user(user):
        raise ProtocolError("user has a character a user name cannot have")
    service = _text(value["service"], "service", 1, MAX_SERVICE)
    if not set(service) <= _SERVICE_CHARS:
        raise ProtocolError("service has characters other than letters, digits and ._-@+")
    password = _text(value["password"], "password", 0, MAX_PASSWORD)
    return Request(user, service, Secret(password, "helper"))


def _valid_user(user):
    return user not in (".", "..") and "/" not in user and user.isprintable() \
        and not any(c.isspace() for c in user)


class Reply:
    __slots__ = ("result", "offline", "retry_after")

    def __init__(self, result, offline=False, retry_after=0):
        self.result, self.offline, self.retry_after = result, offline, retry_after

    def __repr__(self):
        return "<Reply %s%s>" % (self.result, " offline" if self.offline else "")


def encode_reply(result, offline=False, retry_after=0):
    import json
    if result not in RESULTS or type(offline) is not bool or type(retry_after) is not int \
            or not 0 <= retry_after <= 86400:
        raise ProtocolError("bad reply %r" % ((result, offline, retry_after),))
    return json.dumps({"v": VERSION, "result": result, "offline": offline,
                       "retry_after": retry_after}, separators=(",", ":")).encode("ascii")


def parse_reply(data):
    value = _strict_json(data, MAX_REPLY)
    _keys(value, ("v", "result", "offline", "retry_after"))
    if type(value["v"]) is not int or value["v"] != VERSION:
        raise ProtocolError("v must be %d" % VERSION)
    if value["result"] not in RESULTS:
        raise ProtocolError("result must be one of %s" % ", ".join(RESULTS))
    if type(value["offline"]) is not bool:
        raise ProtocolError("offline must be true or false")
    retry = value["retry_after"]
    if type(retry) is not int or not 0 <= retry <= 86400:
        raise ProtocolError("retry_after must be an integer 0-86400")
    return Reply(value["result"], value["offline"], retry)
