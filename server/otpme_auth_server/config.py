"""The server directory: ``server.json`` plus keys, certificates and the SQLite store.

Layout (directory 0700, private files 0600)::

    server.json   configuration (no secrets; a PostgreSQL password belongs in ~/.pgpass
                  or PGPASSFILE, not here)
    ca.key        realm CA private key              0600
    ca.pem        realm CA certificate (hosts pin it)
    server.key    TLS server key                    0600
    server.pem    TLS server certificate
    store.key     32-byte AES-256-GCM key for token secrets   0600
    store.sqlite3 the SQLite store (+ -wal, -shm)   0600
"""

import json
import os

from .errors import ConfigError

DEFAULTS = {
    "listen": "127.0.0.1:4443",
    "workers": 1,
    "session_ttl": 8 * 3600,
    "max_body": 65536,
    "timezone": "UTC",
    "greeting": "Welcome, {user}.",
    "offline_expiry": 30 * 86400,
    "offline_unused_expiry": 7 * 86400,
    "challenge_ttl": 60,
    "totp_window": 1,
    "hotp_lookahead": 10,
    # How far past the server's counter a host may report an HOTP code used offline.
    "offline_hotp_burn_max": 1000,
    "default_accessgroup": "LOGIN",
    "host_cert_days": 365,
    "argon2": {"time_cost": 2, "memory_cost": 19456, "parallelism": 1},
    "log_level": "INFO",
    # Connection limits (docs/server.md, "Limits"); 0 = derived from the open-file limit.
    "max_connections": 0,
    "max_unauthenticated": 0,
    "max_unauthenticated_per_address": 64,
    "tls_handshake_timeout": 10,
    "head_timeout": 10,
    "body_timeout": 10,
    "idle_timeout": 60,
}


class Config(dict):
    """The parsed ``server.json`` with defaults filled in; ``dir`` is the server directory."""

    def __init__(self, directory: str, data: dict):
        super().__init__(DEFAULTS)
        self.update(data)
        self.dir = directory

    @property
    def db(self) -> str:
        db = self.get("db", "sqlite")
        if db == "sqlite":
            return "sqlite:" + os.path.join(self.dir, "store.sqlite3")
        return db

    def listen_addr(self) -> tuple[str, int]:
        return split_listen(self["listen"])


def split_listen(value: str) -> tuple[str, int]:
    """Parse ``HOST:PORT`` (IPv6 as ``[::1]:PORT``)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise ConfigError(f"listen address {value!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def load(directory: str) -> Config:
    """Read DIR/server.json; ConfigError with the reason when it is not usable."""
    path = os.path.join(directory, "server.json")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{directory} is not a server directory (no server.json); "
                          "create one with 'otpme-auth-server init'") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict) or "realm" not in data:
        raise ConfigError(f"{path}: 'realm' is missing")
    return Config(directory, data)


def save(directory: str, data: dict) -> None:
    """Write DIR/server.json (0600)."""
    path = os.path.join(directory, "server.json")
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)
