"""A throwaway PostgreSQL cluster for tests: Debian's server binaries, a free loopback port, trust auth.

    cluster = PostgresCluster().start()      # initdb + pg_ctl start + CREATE DATABASE glue_tf
    cluster.url                              # postgresql://postgres@127.0.0.1:<port>/glue_tf
    url = cluster.new_database()             # a fresh empty database: .../test_<uuid hex>
    cluster.kill()                           # SIGKILL the server: "the database dies"
    cluster.restart()                        # back on the same port and data folder (crash recovery)
    cluster.stop()                           # pg_ctl stop -m fast, then remove the folder

The binaries are the newest ``/usr/lib/postgresql/<version>/bin`` (Debian's ``postgresql``
package). ``initdb`` refuses to run as root, so as root every server command runs as the
``postgres`` system user (``runuser -u postgres --``; the user is created if missing); the
cluster's folder is a ``mkdtemp`` under ``/tmp`` owned by whoever runs the server (pytest's own
temp folders sit under a 0700 directory that user cannot enter). Every step has a timeout;
errors carry the server log's tail.
"""

from __future__ import annotations

import atexit
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

BIN_GLOB = "/usr/lib/postgresql/*/bin"
SERVER_USER = "postgres"  # the OS user that runs the server when we are root
SUPERUSER = "postgres"  # the database superuser initdb creates (trust auth, no password)
DEFAULT_DATABASE = "glue_tf"
MISSING = f"PostgreSQL server binaries not found ({BIN_GLOB}/initdb): Debian package postgresql"
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# Speed over durability, but committed rows survive kill(): with fsync off, a synchronous commit
# costs one write() to the kernel, not a disk flush, and a killed server replays that WAL.
# (synchronous_commit=off would lose the last ~0.6 s of commits on kill().)
SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "full_page_writes": "off",
    "synchronous_commit": "on",
    "max_connections": "200",
}


class PostgresError(RuntimeError):
    """A cluster step failed or timed out; the message ends with the server log's tail."""


def bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` that has ``initdb``, or None."""
    found = [Path(p) for p in glob.glob(BIN_GLOB) if (Path(p) / "initdb").is_file()]

    def version(path: Path) -> tuple:
        return tuple(int(x) if x.isdigit() else -1 for x in path.parent.name.split("."))

    return max(found, key=version) if found else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (a reparented zombie holds no resources)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


class PostgresCluster:
    """One throwaway cluster. ``start()`` it (or use it as a context manager); ``stop()`` removes it."""

    def __init__(self, *, database: str = DEFAULT_DATABASE, settings: dict[str, str] | None = None,
                 start_timeout: float = 60.0) -> None:
        self.bin = bin_dir()
        self.database = _check_name(database)
        self.settings = {**SETTINGS, **(settings or {})}
        self.start_timeout = start_timeout
        self.root: Path | None = None
        self.port: int | None = None
        self._as_user: list[str] = []

    # -- state ---------------------------------------------------------------------------------

    @staticmethod
    def available() -> bool:
        """Whether the server binaries are installed (``apt-get install postgresql``)."""
        return bin_dir() is not None

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def data_dir(self) -> Path:
        return self._root() / "data"

    @property
    def socket_dir(self) -> Path:
        return self._root() / "socket"

    @property
    def log_file(self) -> Path:
        return self._root() / "server.log"

    @property
    def url(self) -> str:
        """libpq URL of the cluster's own database (``glue_tf`` unless told otherwise)."""
        return self.database_url(self.database)

    def database_url(self, name: str) -> str:
        if self.port is None:
            raise PostgresError("the cluster is not started")
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{_check_name(name)}"

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while it runs, else None."""
        try:
            first = (self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
        except (OSError, PostgresError):
            return None
        pid = int(first) if first.strip().isdigit() else None
        return pid if pid and _alive(pid) else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except (OSError, PostgresError):
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty server log)"

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> "PostgresCluster":
        """initdb a fresh cluster, start it on a free loopback port, create ``self.database``."""
        if self.bin is None:
            raise PostgresError(MISSING)
        if self.root is not None:
            raise PostgresError(f"already started ({self.root})")
        self._as_user = _server_user_prefix()
        self.root = Path(tempfile.mkdtemp(prefix="glue-tf-pg-", dir="/tmp" if os.path.isdir("/tmp") else None))
        _LIVE.add(self)
        try:
            self.socket_dir.mkdir(mode=0o700)
            for path in (self.root, self.socket_dir):
                path.chmod(0o700)
                if self._as_user:
                    shutil.chown(path, SERVER_USER, SERVER_USER)
            self._run([str(self.bin / "initdb"), "-D", str(self.data_dir), "-A", "trust", "-U", SUPERUSER,
                       "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"],
                      timeout=self.start_timeout, what="initdb")
            for attempt in range(3):  # the free port may be taken between choosing and binding
                self.port = free_port()
                try:
                    self._start_server()
                    break
                except PostgresError:
                    if attempt == 2 or "already in use" not in self.log_tail(10):
                        raise
            self.new_database(self.database)
        except BaseException:
            self.stop()
            raise
        return self

    def restart(self) -> None:
        """Start the server again on the SAME port and data folder (after ``kill()``, or a stop).

        After ``kill()`` the server replays its WAL: committed data is there. A server still
        running is first stopped cleanly.
        """
        if self.root is None or self.port is None:
            raise PostgresError("restart() needs a started cluster")
        if self.running:
            self._pg_ctl_stop()
        self._start_server()

    def kill(self, timeout: float = 10.0) -> None:
        """SIGKILL the postmaster and its children at once, like a crashed database host.

        Connections break, new ones are refused (the port is closed); ``restart()`` brings it back.
        """
        pid = self.pid
        if pid is None:
            return
        shmem_id = self._shmem_id()
        os.kill(pid, signal.SIGSTOP)  # no new children while we list them
        victims = [pid] + _children(pid)
        for victim in victims:
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while any(_alive(v) for v in victims):
            if time.monotonic() > deadline:
                raise PostgresError(f"server processes {victims} still alive {timeout}s after SIGKILL")
            time.sleep(0.02)
        self._remove_crash_leftovers(shmem_id)

    def stop(self) -> None:
        """Stop the server (``pg_ctl stop -m fast``, SIGKILL if that fails) and remove the folder."""
        if self.root is None:
            return
        try:
            if self.running:
                try:
                    self._pg_ctl_stop()
                except PostgresError:
                    self.kill()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
            _LIVE.discard(self)

    def __enter__(self) -> "PostgresCluster":
        return self.start() if self.root is None else self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- databases -----------------------------------------------------------------------------

    def new_database(self, name: str | None = None) -> str:
        """``CREATE DATABASE name`` (default ``test_<uuid hex>``); returns its URL."""
        name = _check_name(name or f"test_{uuid.uuid4().hex}")
        self._admin(f'CREATE DATABASE "{name}"')
        return self.database_url(name)

    def drop_database(self, name: str) -> None:
        """``DROP DATABASE IF EXISTS name WITH (FORCE)``: open sessions on it are ended."""
        self._admin(f'DROP DATABASE IF EXISTS "{_check_name(name)}" WITH (FORCE)')

    def _admin(self, sql: str) -> None:
        import psycopg

        try:
            with psycopg.connect(self.database_url("postgres"), autocommit=True, connect_timeout=10) as conn:
                conn.execute(sql)
        except psycopg.Error as error:
            raise PostgresError(f"{sql}: {error}\n--- server log ---\n{self.log_tail()}") from error

    # -- internals -----------------------------------------------------------------------------

    def _root(self) -> Path:
        if self.root is None:
            raise PostgresError("the cluster is not started")
        return self.root

    def _shmem_id(self) -> int | None:
        """The System V segment id from postmaster.pid's line 7 (``key id``), if any."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
            return int(lines[6].split()[1])
        except (OSError, IndexError, ValueError):
            return None

    def _remove_crash_leftovers(self, shmem_id: int | None) -> None:
        """What a restarted server would clear itself, had its dead processes been reaped.

        Killed server processes are reparented to pid 1, which in some containers never reaps
        them: as zombies their pids still "exist", so the lock files naming them would block the
        restart. All of them are dead here, so the lock files and the (unattached) System V
        segment go.
        """
        for lock in [self.data_dir / "postmaster.pid", *self.socket_dir.glob(".s.PGSQL.*")]:
            try:
                lock.unlink()
            except FileNotFoundError:
                pass
        if shmem_id is not None:
            subprocess.run(["ipcrm", "-m", str(shmem_id)], capture_output=True, timeout=10)

    def _start_server(self) -> None:
        options = [f"-p {self.port}", f"-k {self.socket_dir}"] + [f"-c {k}={v}" for k, v in self.settings.items()]
        wait = max(5, int(self.start_timeout))
        self._run([str(self.bin / "pg_ctl"), "start", "-w", "-t", str(wait), "-D", str(self.data_dir),
                   "-l", str(self.log_file), "-o", " ".join(options)],
                  timeout=wait + 10, what=f"pg_ctl start (port {self.port})")

    def _pg_ctl_stop(self) -> None:
        self._run([str(self.bin / "pg_ctl"), "stop", "-w", "-t", "30", "-m", "fast", "-D", str(self.data_dir)],
                  timeout=40, what="pg_ctl stop")

    def _run(self, argv: list[str], *, timeout: float, what: str | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        try:
            # stdin/out/err not inherited: pg_ctl's postmaster must not hold pytest's pipes.
            result = subprocess.run(self._as_user + argv, cwd=self.root, env=env, stdin=subprocess.DEVNULL,
                                    capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as error:
            raise PostgresError(f"{what or argv[0]} timed out after {timeout}s\n"
                                f"--- server log ---\n{self.log_tail()}") from error
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()[-3000:]
            raise PostgresError(f"{what or argv[0]} failed (exit {result.returncode}): {output}\n"
                                f"--- server log ---\n{self.log_tail()}")

    def __repr__(self) -> str:
        state = "running" if self.running else ("stopped" if self.root else "not started")
        return f"<PostgresCluster {self.root} port={self.port} {state}>"


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"database name {name!r}: lowercase letters, digits and _ only")
    return name


def _server_user_prefix() -> list[str]:
    """``runuser -u postgres --`` as root (creating that system user if missing), else nothing."""
    if os.geteuid() != 0:
        return []
    import grp
    import pwd

    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        try:
            group = ["-g", grp.getgrnam(SERVER_USER).gr_name]
        except KeyError:
            group = ["--user-group"]
        subprocess.run(["useradd", "--system", *group, "--no-create-home", "--home-dir", "/nonexistent",
                        "--shell", "/usr/sbin/nologin", SERVER_USER], check=True, capture_output=True, timeout=30)
    return ["runuser", "-u", SERVER_USER, "--"]


# Clusters still running when the interpreter exits (a fixture's teardown did not run) are stopped.
_LIVE: set[PostgresCluster] = set()


@atexit.register
def _stop_leftovers() -> None:
    for cluster in list(_LIVE):
        try:
            cluster.stop()
        except Exception:
            pass
