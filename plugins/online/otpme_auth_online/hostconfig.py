"""The host's configuration, written by ``otpme-auth join``::

    # /etc/otpme-auth/host.conf
    realm = example.org
    site = berlin
    host = laptop1
    servers = auth1.example.org:8443, auth2.example.org:8443
    ca_file = /etc/otpme-auth/ca.pem
    cert_file = /etc/otpme-auth/host.pem
    key_file = /etc/otpme-auth/host.key
    VALID_LOGIN_USERS = alice bob
    DENY_LOGIN_USERS = root

``servers`` are tried in order (failover).  ``VALID_LOGIN_USERS``, if set,
lists the only users who may log in on this host; ``DENY_LOGIN_USERS`` those
who may not (seed 001).  Both apply before any prompt.

The syntax, exactly (anything else is a :class:`ConfigError` naming the file
and line, and the login fails closed):

* a line is empty, a comment (``#`` first), or ``KEY = VALUE`` (spaces around
  ``=`` optional);
* ``VALUE`` is bare, or quoted whole with ``"..."`` or ``'...'`` as seed 001
  §21 writes ``VALID_LOGIN_USERS="joe,alice"``; inside quotes nothing is
  special but the closing quote.  A bare value may not contain a quote, a
  ``#`` (no trailing comments: ``DENY_LOGIN_USERS = alice # bob`` would deny
  neither ``#`` nor ``bob`` as meant) or a backslash; a quoted one ends at its
  closing quote, with nothing but spaces after it;
* the user lists are names separated by commas and/or spaces; a name is
  letters, digits and ``._-@$`` (no leading ``-``).  An empty list (``""``)
  is allowed for ``DENY_LOGIN_USERS`` and refused for ``VALID_LOGIN_USERS``
  (it would let no one in: say so by disabling the host on the server).

The file decides which server a root process trusts, so it is read only if
it is owned by root (or the running user), writable by no one else, and not
a symlink; unknown keys are an error, not ignored.
"""

import os
import re

from otpme_auth.errors import ConfigError, StateFileError
from otpme_auth.statefile import read

DEFAULT_PATH = "/etc/otpme-auth/host.conf"
KEYS = ("realm", "site", "host", "servers", "ca_file", "cert_file", "key_file",
        "VALID_LOGIN_USERS", "DENY_LOGIN_USERS")
REQUIRED = ("realm", "host", "servers", "ca_file", "cert_file", "key_file")
USER_LISTS = ("VALID_LOGIN_USERS", "DENY_LOGIN_USERS")
_NAME = re.compile(r"[A-Za-z0-9._@$][A-Za-z0-9._@$-]*\Z")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class HostConfig:
    """The parsed host.conf."""

    def __init__(self, values):
        self.values = values
        self.realm = values["realm"]
        self.site = values.get("site", "")
        self.host = values["host"]
        self.servers = [s.strip() for s in values["servers"].split(",") if s.strip()]
        self.ca_file = values["ca_file"]
        self.cert_file = values["cert_file"]
        self.key_file = values["key_file"]
        self.valid_users = _names(values.get("VALID_LOGIN_USERS"))
        self.deny_users = _names(values.get("DENY_LOGIN_USERS"))

    def refuses(self, user):
        """The reason this host refuses ``user`` before any prompt, or None."""
        if self.deny_users and user in self.deny_users:
            return "%s is in DENY_LOGIN_USERS" % user
        if self.valid_users is not None and user not in self.valid_users:
            return "%s is not in VALID_LOGIN_USERS" % user
        return None


def _names(text):
    if text is None:
        return None
    return frozenset(text.replace(",", " ").split())


def _user_list(value, key, where):
    """Check a user list; ConfigError naming the bad name."""
    names = value.replace(",", " ").split()
    for name in names:
        if not _NAME.match(name):
            raise ConfigError("%s: %s: %r is not a user name (letters, digits and ._-@$; names "
                              "are separated by commas or spaces)" % (where, key, name))
    if not names and key == "VALID_LOGIN_USERS":
        raise ConfigError("%s: VALID_LOGIN_USERS is empty, which would let no one log in; "
                          "remove the line, or disable the host on the server" % where)


def _value(text, where):
    """The value of ``KEY = text``: bare, or quoted whole with " or '."""
    if text[:1] in ("'", '"'):
        quote = text[0]
        end = text.find(quote, 1)
        if end < 0:
            raise ConfigError("%s: the value's %s quote is not closed" % (where, quote))
        rest = text[end + 1:].strip()
        if rest:
            raise ConfigError("%s: unexpected %r after the closing quote (no trailing comments; "
                              "one quoted value per line)" % (where, rest[:40]))
        value = text[1:end]
    else:
        value = text
        for bad, why in (('"', "a quote"), ("'", "a quote"), ("#", "a '#' (no trailing comments)"),
                         ("\\", "a backslash (no escapes)")):
            if bad in value:
                raise ConfigError("%s: the value holds %s; quote the whole value, or remove it"
                                  % (where, why))
    if any(ord(ch) < 0x20 or ord(ch) == 0x7f for ch in value):
        raise ConfigError("%s: the value holds a control character" % where)
    return value


def parse(text, path="host.conf"):
    """The :class:`HostConfig` of ``text``; anything not understood is a ConfigError."""
    values = {}
    for number, line in enumerate(text.split("\n"), 1):
        where = "%s line %d" % (path, number)
        line = line.strip(" \t\r")
        if not line or line.startswith("#"):
            continue
        key, eq, value = line.partition("=")
        key = key.strip(" \t")
        if not eq or not _KEY.match(key):
            raise ConfigError("%s: not understood; expected KEY = VALUE, one of %s"
                              % (where, ", ".join(KEYS)))
        if key not in KEYS:
            raise ConfigError("%s: unknown key %s; expected one of %s"
                              % (where, key, ", ".join(KEYS)))
        if key in values:
            raise ConfigError("%s: %s is given twice" % (where, key))
        value = _value(value.strip(" \t"), where)
        if key in USER_LISTS:
            _user_list(value, key, where)
        values[key] = value
    missing = [k for k in REQUIRED if not values.get(k)]
    if missing:
        raise ConfigError("%s: missing %s (run otpme-auth join)" % (path, ", ".join(missing)))
    config = HostConfig(values)
    if not config.servers:
        raise ConfigError("%s: servers is empty" % path)
    return config


def load(path=DEFAULT_PATH):
    """The host config, or None if this host never joined a realm."""
    try:
        data = read(path, owner=None, allowed_mode=0o644)
    except StateFileError as exc:
        raise ConfigError(str(exc)) from None
    if data is None:
        return None
    st = os.stat(path, follow_symlinks=False)
    if st.st_uid not in (0, os.geteuid()):
        raise ConfigError("%s must be owned by root" % path)
    return parse(data.decode("utf-8", "replace"), path)


def render(values):
    """The text of a host.conf; a value that needs it is written quoted (parse() reads it back)."""
    lines = ["# written by otpme-auth join; see docs/online.md"]
    for key in KEYS:
        value = values.get(key)
        if not value:
            continue
        if any(ord(ch) < 0x20 or ord(ch) == 0x7f for ch in value) or ('"' in value and "'" in value):
            raise ConfigError("%s %r cannot be written to host.conf" % (key, value[:60]))
        if value != value.strip(" \t") or any(ch in value for ch in "#'\"\\"):
            quote = "'" if '"' in value else '"'
            value = quote + value + quote
        lines.append("%s = %s" % (key, value))
    return "\n".join(lines) + "\n"
