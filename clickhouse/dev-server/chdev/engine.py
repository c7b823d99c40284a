"""The embedded chDB engine: start-up, per-request connections and HTTP sessions.

chDB hosts one engine per process, bound to one directory, and stops it when the last
connection closes. A long-lived "keeper" connection keeps the engine (and its background
merges and TTL work) running; every request gets its own short-lived connection so requests
run in parallel and never see each other's SET/USE state.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from typing import Iterator, Optional

import chdb

from . import errors
from .errors import ClickHouseError

log = logging.getLogger("chdev")

SESSION_LOCK_WAIT = 10.0  # seconds; a client's previous request may still be releasing the session
DEFAULT_SESSION_TIMEOUT = 60
MAX_SESSION_TIMEOUT = 3600


class EngineStartError(RuntimeError):
    """The engine could not be opened on the data directory (message is user-facing)."""


class Engine:
    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        if "?" in self.path:
            # chdb.connect() would read everything after '?' as connection parameters.
            raise EngineStartError(f"the data directory path must not contain '?': {self.path}")
        try:
            os.makedirs(self.path, exist_ok=True)
        except OSError as exc:
            raise EngineStartError(f"cannot create data directory {self.path}: {exc}") from None
        self._check_not_locked()
        self.keeper = self._open_keeper()
        self.version = self._scalar("SELECT version()")
        self.timezone = self._scalar("SELECT timezone()")
        self.settings = frozenset(
            self._column("SELECT name FROM system.settings"))
        errors.register_names({
            int(code): name for code, name in (
                line.split("\t") for line in self._column(
                    "SELECT DISTINCT code, name FROM system.errors "
                    "SETTINGS system_events_show_zero_values = 1"))})
        errors.server_version = self.version
        self.sessions = SessionManager(self)

    # -- start-up ------------------------------------------------------------------------------

    def _check_not_locked(self) -> None:
        """Fail early and clearly when another process holds the directory's lock.

        The engine takes an exclusive flock on <path>/status; probing it ourselves gives a
        readable message instead of chDB's generic "Error initializing EmbeddedServer".
        """
        status = os.path.join(self.path, "status")
        if not os.path.exists(status):
            return
        try:
            fd = os.open(status, os.O_RDONLY)
        except OSError:
            return  # let the engine report it
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
        except BlockingIOError:
            raise EngineStartError(_locked_message(self.path, _read_owner(status))) from None
        finally:
            os.close(fd)

    def _open_keeper(self):
        # The engine prints its own diagnostics (such as Code 76) straight to fd 2 and raises a
        # vague Python error, so capture fd 2 while opening to build a readable message.
        sys.stderr.flush()
        saved = os.dup(2)
        with tempfile.TemporaryFile() as captured:
            os.dup2(captured.fileno(), 2)
            try:
                conn = chdb.connect(self.path)
                failure = None
            except Exception as exc:  # chDB raises RuntimeError
                conn, failure = None, exc
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            captured.seek(0)
            output = captured.read().decode("utf-8", "replace").strip()
        if failure is None:
            if output:
                print(output, file=sys.stderr)
            return conn
        if "Cannot lock file" in output or "Code: 76" in output:
            raise EngineStartError(_locked_message(self.path, None))
        detail = output or str(failure)
        raise EngineStartError(f"cannot open the chDB engine on {self.path}: {detail}")

    def _scalar(self, sql: str) -> str:
        return self.keeper.query(sql, "TabSeparatedRaw").bytes().decode().strip()

    def _column(self, sql: str) -> list[str]:
        text = self.keeper.query(sql, "TabSeparatedRaw").bytes().decode()
        return [line for line in text.split("\n") if line]

    # -- per-request connections ------------------------------------------------------------

    def connect(self):
        try:
            return chdb.connect(self.path)
        except Exception as exc:
            raise errors.from_engine(exc) from None

    @contextmanager
    def connection(self, session_id: Optional[str] = None, *, check: bool = False,
                   timeout: Optional[int] = None, close: bool = False) -> Iterator[object]:
        """A fresh connection for one request, or the session's connection while holding it."""
        if session_id is None:
            conn = self.connect()
            try:
                yield conn
            finally:
                _close_quietly(conn)
        else:
            with self.sessions.hold(session_id, check=check, timeout=timeout, close=close) as conn:
                yield conn

    def close(self) -> None:
        self.sessions.close_all()
        # Closing the last connection stops the engine, which flushes data to disk.
        _close_quietly(self.keeper)


def _close_quietly(conn) -> None:
    try:
        conn.close()
    except Exception:  # closing must never mask the request's own outcome
        log.debug("closing a chDB connection failed", exc_info=True)


def _read_owner(status_path: str) -> Optional[str]:
    try:
        with open(status_path, encoding="utf-8", errors="replace") as f:
            return f.read().strip() or None
    except OSError:
        return None


def _locked_message(path: str, owner: Optional[str]) -> str:
    msg = (f"the data directory {path} is in use by another process (another dev server or "
           f"chDB program holds its lock, {os.path.join(path, 'status')}). Stop that process "
           f"or pass a different --path. [chDB: Code: 76. Cannot lock file, CANNOT_OPEN_FILE]")
    if owner:
        msg += "\nLock owner as recorded in the status file:\n  " + owner.replace("\n", "\n  ")
    return msg


class _Session:
    __slots__ = ("conn", "lock", "timeout", "expires", "closed")

    def __init__(self, conn, timeout: int):
        self.conn = conn
        self.lock = threading.Lock()
        self.timeout = timeout
        self.expires = time.monotonic() + timeout
        self.closed = False


class SessionManager:
    """`session_id` -> a persistent connection plus a lock, expiring after session_timeout."""

    def __init__(self, engine: Engine):
        self._engine = engine
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()
        self._reaper = threading.Thread(target=self._reap_loop, name="chdev-sessions", daemon=True)
        self._stop = threading.Event()
        self._reaper.start()

    @staticmethod
    def parse_timeout(raw: Optional[str]) -> int:
        if raw is None or raw == "":
            return DEFAULT_SESSION_TIMEOUT
        try:
            value = int(raw)
        except ValueError:
            value = -1
        if value < 0 or value > MAX_SESSION_TIMEOUT:
            raise ClickHouseError(
                "INVALID_SESSION_TIMEOUT",
                f"Invalid session timeout: '{raw}', max value is {MAX_SESSION_TIMEOUT} seconds")
        return value

    @contextmanager
    def hold(self, session_id: str, *, check: bool, timeout: Optional[int], close: bool):
        deadline = time.monotonic() + SESSION_LOCK_WAIT
        while True:
            session = self._get_or_create(session_id, check, timeout)
            if not session.lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                raise ClickHouseError(
                    "SESSION_IS_LOCKED",
                    f"Session {session_id} is locked by a concurrent client "
                    f"(waited {SESSION_LOCK_WAIT:.0f} s)")
            if not session.closed:
                break
            session.lock.release()  # expired while we waited: start a new one
        try:
            if timeout is not None:
                session.timeout = timeout
            yield session.conn
        finally:
            session.expires = time.monotonic() + session.timeout
            if close:
                self._drop(session_id, session)
            session.lock.release()

    def _get_or_create(self, session_id: str, check: bool, timeout: Optional[int]) -> _Session:
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None and not session.closed:
                return session
            if check:
                raise ClickHouseError("SESSION_NOT_FOUND", f"Session {session_id} not found")
            session = _Session(self._engine.connect(),
                               DEFAULT_SESSION_TIMEOUT if timeout is None else timeout)
            self._sessions[session_id] = session
            return session

    def _drop(self, session_id: str, session: _Session) -> None:
        """Close a session whose lock the caller holds."""
        with self._lock:
            if self._sessions.get(session_id) is session:
                del self._sessions[session_id]
        session.closed = True
        _close_quietly(session.conn)

    def _reap_loop(self) -> None:
        while not self._stop.wait(1.0):
            now = time.monotonic()
            with self._lock:
                expired = [(sid, s) for sid, s in self._sessions.items() if s.expires < now]
            for sid, session in expired:
                if session.lock.acquire(blocking=False):  # busy sessions are not expired
                    try:
                        if session.expires < time.monotonic():
                            self._drop(sid, session)
                    finally:
                        session.lock.release()

    def close_all(self) -> None:
        self._stop.set()
        with self._lock:
            sessions = list(self._sessions.items())
        for sid, session in sessions:
            if session.lock.acquire(timeout=2.0):
                try:
                    self._drop(sid, session)
                finally:
                    session.lock.release()
