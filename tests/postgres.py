"""A throw-away PostgreSQL server on 127.0.0.1 for the tests, started with the machine's own
PostgreSQL binaries. initdb refuses to run as root, so under root the server runs as the
``postgres`` user. Tests that need it skip cleanly where PostgreSQL or psycopg is absent."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


def _binaries() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    installed = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return installed[-1].parent if installed else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server() -> Iterator[str]:
    """Start a server; yield its URL without a database name; stop it and remove its files."""
    binaries = _binaries()
    if binaries is None:
        pytest.skip("PostgreSQL is not installed (no initdb)")
    pytest.importorskip("psycopg", reason="psycopg (the postgres extra) is not installed")
    as_user: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="harness-pg-"))
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root without a postgres user: initdb refuses root")
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser to start PostgreSQL as the postgres user")
        os.chown(root, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", _free_port()
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    try:
        subprocess.run(
            [
                *as_user,
                str(binaries / "initdb"),
                "-D",
                str(data),
                "-A",
                "trust",
                "-U",
                "harness",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                *as_user,
                str(binaries / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(root / "log"),
                "-w",
                "start",
            ],
            check=True,
            capture_output=True,
        )
        yield f"postgresql://harness@127.0.0.1:{port}"
    finally:
        if data.exists():
            subprocess.run(
                [*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                capture_output=True,
            )
        shutil.rmtree(root, ignore_errors=True)


def fresh_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server for one test; dropped afterwards."""
    from sqlalchemy import create_engine, text

    from leaderboard.database import locate

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(locate(f"{server_url}/postgres").url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{server_url}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
