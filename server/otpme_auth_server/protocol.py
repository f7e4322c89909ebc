"""Parsing and validation of protocol requests (pure functions, fuzzed by the tests).

Every malformed input raises :class:`BadRequest` with a documented code; nothing
here touches the store, so a bad request changes nothing.
"""

import json
import re

from .errors import BadRequest

MAX_HEADER = 8192
MAX_BODY = 65536
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
HOST_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}")
PATH_RE = re.compile(r"/[\x21-\x7e]{0,255}")  # printable: the path is logged
CHALLENGE_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")

# field -> (type, max length, required); None is accepted where not required.
TOKEN_RE = re.compile(NAME_RE.pattern + "/" + NAME_RE.pattern)
MAX_OFFLINE_USED = 64
MAX_COUNTER = 2 ** 53

SCHEMAS = {
    # offline_used: [{"token": "alice/totp", "counter": 57412345}, ...], the one-time
    # codes the host accepted offline (docs/protocol.md, "Codes used offline").
    "/v1/preauth": {"user": (str, 64, True), "offline_used": (list, MAX_OFFLINE_USED, False)},
    "/v1/auth": {"user": (str, 64, True), "password": (str, 1024, False),
                 "challenge_id": (str, 64, False), "response": (str, 4096, False)},
    "/v1/join": {"host": (str, 253, True), "jotp": (str, 64, True), "csr": (str, 16384, True)},
    # The account phase (pam_acct_mgmt) of a session about to be opened on the host.
    "/v1/account": {"user": (str, 64, True)},
}


class Request:
    """A parsed HTTP/1.1 request head."""

    __slots__ = ("method", "path", "version", "headers", "length", "keep_alive")

    def __init__(self, method, path, version, headers, length, keep_alive):
        self.method = method
        self.path = path
        self.version = version
        self.headers = headers
        self.length = length
        self.keep_alive = keep_alive


def parse_head(head: bytes, max_body: int = MAX_BODY) -> Request:
    """Parse the request line and headers (``head`` ends with the blank line).

    Only ``Content-Length`` bodies are accepted (no chunked encoding), up to
    ``max_body`` bytes.
    """
    if len(head) > MAX_HEADER:
        raise BadRequest("header_too_large", "request header too large", 431)
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        raise BadRequest("malformed_request", "request header is not ASCII") from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if (len(parts) != 3 or parts[2] not in ("HTTP/1.1", "HTTP/1.0")
            or not PATH_RE.fullmatch(parts[1])):
        raise BadRequest("malformed_request", "malformed request line")
    method, path, version = parts
    headers = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or not name.isascii():
            raise BadRequest("malformed_request", "malformed header line")
        headers[name.lower()] = value.strip()
    if "transfer-encoding" in headers:
        raise BadRequest("unsupported_encoding", "transfer-encoding is not supported; send Content-Length", 411)
    raw_len = headers.get("content-length", "0")
    if not raw_len.isdigit() or len(raw_len) > 12:
        raise BadRequest("malformed_request", "bad Content-Length")
    length = int(raw_len)
    if length > max_body:
        raise BadRequest("body_too_large", f"request body larger than {max_body} bytes", 413)
    conn = headers.get("connection", "").lower()
    keep_alive = conn != "close" if version == "HTTP/1.1" else conn == "keep-alive"
    return Request(method, path, version, headers, length, keep_alive)


def parse_body(path: str, body: bytes) -> dict:
    """Decode and validate the JSON body of a POST to ``path``."""
    schema = SCHEMAS.get(path)
    if schema is None:
        raise BadRequest("not_found", "no such endpoint", 404)
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadRequest("malformed_json", "request body is not valid UTF-8 JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("malformed_json", "request body must be a JSON object")
    for key in data:
        if key not in schema:
            raise BadRequest("unknown_field", f"unknown field {key[:40]!r}")
    out = {}
    for key, (typ, maxlen, required) in schema.items():
        value = data.get(key)
        if value is None:
            if required:
                raise BadRequest("missing_field", f"field {key!r} is required")
            out[key] = None
            continue
        if not isinstance(value, typ):
            raise BadRequest("wrong_type", f"field {key!r} must be a {typ.__name__}")
        if len(value) > maxlen:
            raise BadRequest("too_long", f"field {key!r} is longer than {maxlen}")
        if typ is str and "\x00" in value:
            raise BadRequest("wrong_type", f"field {key!r} contains a NUL character")
        out[key] = value
    if out.get("offline_used") is not None:
        out["offline_used"] = _offline_used(out["offline_used"])
    if "user" in out and not NAME_RE.fullmatch(out["user"]):
        raise BadRequest("bad_user", "field 'user' is not a valid user name")
    if out.get("host") is not None and not HOST_RE.fullmatch(out["host"]):
        raise BadRequest("bad_host", "field 'host' is not a valid host name")
    if out.get("challenge_id") is not None:
        if not CHALLENGE_RE.fullmatch(out["challenge_id"]):
            raise BadRequest("wrong_type", "field 'challenge_id' is not a challenge id")
        if out.get("response") is None:
            raise BadRequest("missing_field", "field 'response' is required with 'challenge_id'")
    if path == "/v1/auth" and out.get("password") is None and out.get("challenge_id") is None:
        raise BadRequest("missing_field", "give 'password' or 'challenge_id' and 'response'")
    return out


def _offline_used(items: list) -> list[tuple[str, int]]:
    """Validate the ``offline_used`` list: (token name, counter) pairs."""
    out = []
    for item in items:
        if not isinstance(item, dict) or set(item) != {"token", "counter"}:
            raise BadRequest("wrong_type", "each item of 'offline_used' must be an object "
                             "with exactly 'token' and 'counter'")
        token, counter = item["token"], item["counter"]
        if not isinstance(token, str) or not TOKEN_RE.fullmatch(token):
            raise BadRequest("wrong_type", "an 'offline_used' token is not a token name (USER/TOKEN)")
        if type(counter) is not int or not 0 <= counter < MAX_COUNTER:
            raise BadRequest("wrong_type", f"an 'offline_used' counter must be an integer "
                             f"0..{MAX_COUNTER - 1}")
        out.append((token, counter))
    return out


def error_body(code: str, message: str) -> dict:
    """The JSON body of an error answer."""
    return {"status": "error", "error": code, "message": message}


# -- POST /v1/radius/auth: FreeRADIUS's rlm_rest, ``body = 'json'`` (docs/radius.md) ---------
#: The attributes read from rlm_rest's JSON: {"User-Name": {"type": "string", "value":
#: ["alice"]}, ...}; every other attribute FreeRADIUS sends is ignored.
RADIUS_FIELDS = {"User-Name": ("user", 64), "User-Password": ("password", 1024),
                 "FreeRADIUS-Client-Shortname": ("client", 64)}


def parse_radius(body: bytes) -> dict:
    """Decode rlm_rest's JSON body into {"user", "password", "client"} (BadRequest if bad)."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadRequest("malformed_json", "request body is not valid UTF-8 JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("malformed_json", "request body must be a JSON object")
    out = {}
    for attr, (key, maxlen) in RADIUS_FIELDS.items():
        item = data.get(attr)
        if item is None:
            raise BadRequest("missing_field", f"attribute {attr!r} is required")
        values = item.get("value") if isinstance(item, dict) else None
        if not isinstance(values, list) or len(values) != 1 or not isinstance(values[0], str):
            raise BadRequest("wrong_type", f"attribute {attr!r} must be an object with one "
                             "string in 'value'")
        value = values[0]
        if len(value) > maxlen:
            raise BadRequest("too_long", f"attribute {attr!r} is longer than {maxlen}")
        if "\x00" in value:
            raise BadRequest("wrong_type", f"attribute {attr!r} contains a NUL character")
        out[key] = value
    if not NAME_RE.fullmatch(out["user"]):
        raise BadRequest("bad_user", "attribute 'User-Name' is not a valid user name")
    if not NAME_RE.fullmatch(out["client"]):
        raise BadRequest("bad_client", "attribute 'FreeRADIUS-Client-Shortname' is not a client name")
    return out
