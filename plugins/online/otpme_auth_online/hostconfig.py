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

The file decides which server a root process trusts, so it is read only if
it is owned by root (or the running user), writable by no one else, and not
a symlink; unknown keys are an error, not ignored.
"""

import os

from otpme_auth.errors import ConfigError, StateFileError
from otpme_auth.statefile import read

DEFAULT_PATH = "/etc/otpme-auth/host.conf"
KEYS = ("realm", "site", "host", "servers", "ca_file", "cert_file", "key_file",
        "VALID_LOGIN_USERS", "DENY_LOGIN_USERS")
REQUIRED = ("realm", "host", "servers", "ca_file", "cert_file", "key_file")


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


def parse(text, path="host.conf"):
    values = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, eq, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or key not in KEYS:
            raise ConfigError("%s line %d: expected one of %s = value" % (path, number, ", ".join(KEYS)))
        if key in values:
            raise ConfigError("%s line %d: %s is given twice" % (path, number, key))
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
    lines = ["# written by otpme-auth join; see docs/online.md"]
    for key in KEYS:
        if values.get(key):
            lines.append("%s = %s" % (key, values[key]))
    return "\n".join(lines) + "\n"
