"""Fixtures for the server tests (helpers live in srvkit.py)."""

import json
import os
import subprocess

import pytest

from otpme_auth.testing import skip_or_fail
from srvkit import PG_BIN, PgCluster, ServerProc, make_realm


@pytest.fixture(scope="session")
def pg():
    if not os.path.exists(f"{PG_BIN}/initdb"):
        skip_or_fail(f"PostgreSQL server binaries not found in {PG_BIN} (Debian package postgresql-15)")
    cluster = PgCluster()
    try:
        cluster.start()
    except (subprocess.CalledProcessError, KeyError) as exc:
        cluster.stop()
        skip_or_fail(f"cannot start a PostgreSQL cluster: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request):
    """'sqlite' or a fresh PostgreSQL database URL."""
    if request.param == "sqlite":
        return "sqlite"
    return request.getfixturevalue("pg").new_db()


@pytest.fixture
def realm_dir(tmp_path, backend):
    return make_realm(tmp_path, backend)


@pytest.fixture
def server(realm_dir):
    with open(os.path.join(realm_dir, "server.json")) as f:
        port = int(json.load(f)["listen"].rsplit(":", 1)[1])
    s = ServerProc(realm_dir, port)
    yield s
    s.stop()
