"""A throw-away PostgreSQL server for the store's tests, started from the server programs of the machine's
packages (Debian's ``postgresql``), listening only on a Unix socket in a temporary folder.

Found in the usual install folders, never through PATH; with no server programs, or no ``psycopg`` driver,
the tests that need it are skipped with the reason."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

#: Where PostgreSQL's server programs are installed: Debian/Ubuntu, then Homebrew, then a source build.
SEARCHED = ["/usr/lib/postgresql/*/bin", "/usr/local/opt/postgresql*/bin", "/opt/homebrew/opt/postgresql*/bin",
            "/usr/local/pgsql/bin", "/usr/local/bin", "/usr/bin"]


def find_bindir() -> Path | None:
    for pattern in SEARCHED:
        for folder in sorted(glob.glob(pattern), reverse=True):  # the newest version first
            if (Path(folder) / "initdb").is_file() and (Path(folder) / "postgres").is_file():
                return Path(folder)
    return None


def unavailable_reason() -> str | None:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "the PostgreSQL driver psycopg is not installed (pip install 'psycopg[binary]')"
    if find_bindir() is None:
        return f"no PostgreSQL server programs (initdb, postgres) in {', '.join(SEARCHED)}; install Debian's postgresql"
    return None


class PostgresServer:
    def __init__(self) -> None:
        bindir = find_bindir()
        assert bindir is not None
        # A short path: a Unix socket's path must stay under about 100 characters.
        self.folder = Path(tempfile.mkdtemp(prefix="gcw-pg-", dir="/tmp"))
        self.data = self.folder / "data"
        user = {}
        if os.geteuid() == 0:  # the server refuses to run as root: run it as an unprivileged user
            import pwd

            nobody = pwd.getpwnam("nobody")
            os.chown(self.folder, nobody.pw_uid, nobody.pw_gid)
            user = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
        env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "HOME": str(self.folder)}
        subprocess.run([str(bindir / "initdb"), "-D", str(self.data), "-U", "gcw", "--auth=trust", "-E", "UTF8"],
                       check=True, capture_output=True, env=env, cwd=self.folder, timeout=120, **user)
        self.process = subprocess.Popen(
            [str(bindir / "postgres"), "-D", str(self.data), "-k", str(self.folder), "-c", "listen_addresses=",
             "-c", "fsync=off", "-c", "max_connections=60"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=self.folder, **user)
        socket = self.folder / ".s.PGSQL.5432"
        deadline = time.monotonic() + 60
        while not self._accepts_connections():
            if self.process.poll() is not None or time.monotonic() > deadline:
                error = self.process.stderr.read().decode(errors="replace") if self.process.poll() is not None else ""
                self.stop()
                raise RuntimeError(f"PostgreSQL did not start (socket {socket}): {error[-2000:]}")
            time.sleep(0.1)
        self._count = 0

    def _accepts_connections(self) -> bool:
        import psycopg

        try:
            psycopg.connect(host=str(self.folder), user="gcw", dbname="postgres", connect_timeout=2).close()
            return True
        except psycopg.OperationalError:
            return False

    def new_database(self) -> str:
        """The SQLAlchemy URL of a new, empty database on this server."""
        import psycopg

        self._count += 1
        name = f"store_{os.getpid()}_{self._count}"
        with psycopg.connect(host=str(self.folder), user="gcw", dbname="postgres", autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://gcw@/{name}?host={self.folder}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.folder, ignore_errors=True)
