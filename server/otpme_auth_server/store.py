"""The store: SQLite (WAL, default) or PostgreSQL (psycopg 3), one code path.

Configuration objects (users, tokens, hosts, roles, access groups, policies) are
JSON documents in ``objects``; what changes at every login lives in narrow tables
updated by single conditional statements, which is what makes one-time codes
one-time across processes:

* ``otp_state``   last accepted HOTP counter / TOTP step per token
                  (``UPDATE ... WHERE last_counter < ?``),
* ``fail_state``  per (user, access group): the slots of the failure budget taken by
                  failed and running attempts (a conditional upsert takes one before
                  any credential is checked; docs/protocol.md, "Failed logins"),
* ``challenges``  single-use smartcard / ssh challenges (``DELETE`` wins once),
* ``sessions``    the sessions handed out,
* ``joins``       keyed digests of pending join one-time passwords (``DELETE`` wins once).

The only dialect differences are the placeholder and the connection setup: SQL is
written once with ``?`` and rewritten to ``%s`` for psycopg.
"""

import asyncio
import json
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from .errors import AlreadyExists, NotFound, StoreBusy, StoreError

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, n BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS objects (kind TEXT NOT NULL, name TEXT NOT NULL,"
    " owner TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (kind, name))",
    "CREATE INDEX IF NOT EXISTS objects_owner ON objects (kind, owner)",
    "CREATE TABLE IF NOT EXISTS otp_state (token TEXT PRIMARY KEY, last_counter BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS fail_state (username TEXT NOT NULL, accessgroup TEXT NOT NULL,"
    " fails INTEGER NOT NULL, last_fail DOUBLE PRECISION NOT NULL,"
    " started DOUBLE PRECISION NOT NULL DEFAULT 0, PRIMARY KEY (username, accessgroup))",
    "CREATE TABLE IF NOT EXISTS challenges (id TEXT PRIMARY KEY, username TEXT NOT NULL,"
    " token TEXT NOT NULL, host TEXT NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL,"
    " expires DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, username TEXT NOT NULL,"
    " token TEXT NOT NULL, host TEXT NOT NULL, created DOUBLE PRECISION NOT NULL,"
    " expires DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE IF NOT EXISTS joins (host TEXT PRIMARY KEY, digest TEXT NOT NULL)",
]


class Conn:
    """One database connection with the dialect hidden behind ``?`` placeholders."""

    def __init__(self, raw, dialect: str):
        self.raw = raw
        self.dialect = dialect
        self._sql = {}

    def _q(self, sql: str) -> str:
        if self.dialect == "sqlite":
            return sql
        q = self._sql.get(sql)
        if q is None:
            q = self._sql[sql] = sql.replace("?", "%s")
        return q

    def execute(self, sql: str, params=()):
        """Run one statement; returns the cursor (``rowcount``, ``fetchone``...)."""
        try:
            if self.dialect == "sqlite":
                return self.raw.execute(sql, params)
            return self.raw.execute(self._q(sql), params)
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise StoreBusy("the SQLite store is locked by another process") from None
            raise StoreError(f"store statement failed: {exc}") from None
        except (sqlite3.Error, _pg_error()) as exc:
            raise StoreError(f"store statement failed: {type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''}") from None

    def one(self, sql: str, params=()):
        """First row of a query, or None."""
        return self.execute(sql, params).fetchone()

    def all(self, sql: str, params=()):
        """All rows of a query."""
        return self.execute(sql, params).fetchall()

    @contextmanager
    def transaction(self):
        """A write transaction; SQLite takes the write lock at once (BEGIN IMMEDIATE)."""
        self.execute("BEGIN IMMEDIATE" if self.dialect == "sqlite" else "BEGIN")
        try:
            yield self
        except BaseException:
            try:
                self.raw.execute("ROLLBACK")
            except Exception:
                pass
            raise
        self.execute("COMMIT")

    def close(self):
        self.raw.close()

    # -- configuration objects -------------------------------------------------

    def generation(self) -> int:
        """Counter bumped by every administrative change (cache invalidation)."""
        row = self.one("SELECT n FROM meta WHERE k = 'generation'")
        return row[0] if row else 0

    def bump(self) -> None:
        """Record an administrative change (call inside the change's transaction)."""
        self.execute("UPDATE meta SET n = n + 1 WHERE k = 'generation'")

    def get(self, kind: str, name: str) -> dict | None:
        """The object ``kind``/``name`` as a dict, or None."""
        row = self.one("SELECT data FROM objects WHERE kind = ? AND name = ?", (kind, name))
        return json.loads(row[0]) if row else None

    def need(self, kind: str, name: str) -> dict:
        """Like :meth:`get` but raises NotFound naming the object."""
        obj = self.get(kind, name)
        if obj is None:
            raise NotFound(f"{kind} '{name}' does not exist")
        return obj

    def list(self, kind: str, owner: str | None = None) -> list[tuple[str, dict]]:
        """(name, data) of every object of ``kind`` (of ``owner`` when given), by name."""
        if owner is None:
            rows = self.all("SELECT name, data FROM objects WHERE kind = ? ORDER BY name", (kind,))
        else:
            rows = self.all("SELECT name, data FROM objects WHERE kind = ? AND owner = ? ORDER BY name",
                            (kind, owner))
        return [(r[0], json.loads(r[1])) for r in rows]

    def insert(self, kind: str, name: str, data: dict, owner: str = "") -> None:
        """Create an object; AlreadyExists if the name is taken."""
        if self.one("SELECT 1 FROM objects WHERE kind = ? AND name = ?", (kind, name)):
            raise AlreadyExists(f"{kind} '{name}' exists already")
        self.execute("INSERT INTO objects (kind, name, owner, data) VALUES (?, ?, ?, ?)",
                     (kind, name, owner, json.dumps(data, sort_keys=True)))
        self.bump()

    def update(self, kind: str, name: str, data: dict) -> None:
        """Replace an object's data; NotFound if it does not exist."""
        cur = self.execute("UPDATE objects SET data = ? WHERE kind = ? AND name = ?",
                           (json.dumps(data, sort_keys=True), kind, name))
        if cur.rowcount != 1:
            raise NotFound(f"{kind} '{name}' does not exist")
        self.bump()

    def delete(self, kind: str, name: str) -> None:
        """Remove an object; NotFound if it does not exist."""
        cur = self.execute("DELETE FROM objects WHERE kind = ? AND name = ?", (kind, name))
        if cur.rowcount != 1:
            raise NotFound(f"{kind} '{name}' does not exist")
        self.bump()


def _migrate(c: Conn) -> None:
    """Bring a store made by an older release up to this schema (in its transaction)."""
    if c.dialect == "sqlite":
        have = {r[1] for r in c.all("PRAGMA table_info(fail_state)")}
    else:
        have = {r[0] for r in c.all("SELECT column_name FROM information_schema.columns"
                                    " WHERE table_name = 'fail_state' AND table_schema = current_schema()")}
    if "started" not in have:  # 0.1: failures without a budget epoch
        c.execute("ALTER TABLE fail_state ADD COLUMN started DOUBLE PRECISION NOT NULL DEFAULT 0")


def _pg_error():
    try:
        import psycopg
    except ImportError:  # pragma: no cover - only without the postgres extra
        return sqlite3.Error
    return psycopg.Error


class Store:
    """Opens connections to the configured database and runs work on them.

    ``db`` is ``sqlite:PATH`` (or a bare path) or a ``postgresql://`` URL.  The
    asynchronous server calls :meth:`run`: on SQLite the work runs inline (a local
    statement takes microseconds, a thread hop would cost more), on PostgreSQL in a
    small thread pool, one connection per thread, so network round trips overlap.
    """

    def __init__(self, db: str, pool_size: int = 8):
        if db.startswith(("postgresql://", "postgres://")):
            self.dialect = "postgresql"
            self.dsn = db
        else:
            self.dialect = "sqlite"
            self.dsn = db[len("sqlite:"):] if db.startswith("sqlite:") else db
        self.pool_size = pool_size
        self._local = threading.local()
        self._executor = None
        self._inline = None

    def connect(self, busy_timeout_ms: int = 30000) -> Conn:
        """A new connection (autocommit; transactions are explicit)."""
        if self.dialect == "sqlite":
            try:
                raw = sqlite3.connect(self.dsn, isolation_level=None, timeout=30,
                                      check_same_thread=False, cached_statements=256)
                raw.execute("PRAGMA journal_mode=WAL")
                # NORMAL in WAL mode: durable against process crashes, a power cut may
                # lose the last transactions but never corrupts (documented).
                raw.execute("PRAGMA synchronous=NORMAL")
                raw.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open SQLite store {self.dsn}: {exc}") from None
            return Conn(raw, "sqlite")
        import psycopg
        try:
            raw = psycopg.connect(self.dsn, autocommit=True, prepare_threshold=1, connect_timeout=10)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {str(exc).splitlines()[0]}") from None
        return Conn(raw, "postgresql")

    def create_schema(self) -> None:
        """Create the tables (idempotent)."""
        c = self.connect()
        try:
            with c.transaction():
                for stmt in SCHEMA:
                    c.execute(stmt)
                _migrate(c)
                if not c.one("SELECT 1 FROM meta WHERE k = 'generation'"):
                    c.execute("INSERT INTO meta (k, n) VALUES ('generation', 1)")
        finally:
            c.close()

    @contextmanager
    def session(self):
        """A connection for synchronous callers (admin CLI, tests)."""
        c = self.connect()
        try:
            yield c
        finally:
            c.close()

    def _thread_conn(self) -> Conn:
        c = getattr(self._local, "conn", None)
        if c is None:
            c = self._local.conn = self.connect()
        return c

    def _call(self, fn, args):
        c = self._thread_conn()
        try:
            return fn(c, *args)
        except StoreError:
            if getattr(c.raw, "closed", False) or getattr(c.raw, "broken", False):
                self._local.conn = None  # reconnect at the next call
            raise

    async def run(self, fn, *args):
        """Run ``fn(conn, *args)`` against the store from the event loop."""
        if self.dialect == "sqlite":
            if self._inline is None:
                # No blocking busy handler: SQLite's sleeps (1, 2, 5, 10... ms) would stall
                # the whole event loop. A unit of work that meets the write lock of another
                # process fails at its first statement (BEGIN IMMEDIATE or a single
                # autocommit statement), so it is retried here after yielding the loop.
                self._inline = self.connect(busy_timeout_ms=0)
                # Checkpoints copy the WAL into the database and fsync: done by a
                # background thread (which releases the GIL), never by a login's COMMIT.
                self._inline.execute("PRAGMA wal_autocheckpoint=0")
                self._start_checkpointer()
            delay, deadline = 0.0002, time.monotonic() + 30
            while True:
                try:
                    return fn(self._inline, *args)
                except StoreBusy:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 0.001)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.pool_size, thread_name_prefix="store")
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._call, fn, args)

    def _start_checkpointer(self, interval: float = 0.5) -> None:
        stop = self._stop = threading.Event()
        path = self.dsn

        def loop():
            conn = sqlite3.connect(path, isolation_level=None, timeout=5, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=5000")
            try:
                while not stop.wait(interval):
                    try:
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    except sqlite3.Error:
                        pass  # retried at the next interval
            finally:
                conn.close()
        threading.Thread(target=loop, name="wal-checkpoint", daemon=True).start()

    def close(self) -> None:
        """Close the inline connection and the pool."""
        if getattr(self, "_stop", None) is not None:
            self._stop.set()
        if self._inline is not None:
            self._inline.close()
            self._inline = None
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None
