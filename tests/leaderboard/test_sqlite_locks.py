"""SQLite's locks are POSIX locks, held per process: closing any descriptor of the file drops all
of them, and another process may then take the file as its own (checkpoint and delete the WAL
under a live connection: "database disk image is malformed"). Opening the leaderboard must never
do that to a connection the process already holds, and a command's connections end with it."""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from leaderboard.store import open_store

SHARED_FIRST = 0x40000000 + 2  # SQLite's lock bytes: PENDING_BYTE, RESERVED, then 510 SHARED bytes
PROBE = f"""
import fcntl, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDWR)
wanted = struct.pack("hhqqi", fcntl.F_WRLCK, 0, {SHARED_FIRST}, 510, 0)
print(struct.unpack("hhqqi", fcntl.fcntl(fd, fcntl.F_GETLK, wanted))[0] != fcntl.F_UNLCK)
"""


def another_process_sees_a_shared_lock(path: Path) -> bool:
    done = subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().lower())


@pytest.mark.skipif(not hasattr(fcntl, "F_GETLK"), reason="POSIX locks")
def test_opening_the_leaderboard_keeps_the_locks_of_a_connection_this_process_holds(tmp_path):
    path = tmp_path / "h.db"
    open_store(path).close()
    held = sqlite3.connect(path)
    held.execute("SELECT count(*) FROM runs").fetchall()  # WAL mode: the SHARED lock stays while open
    assert another_process_sees_a_shared_lock(path)

    open_store(path).close()
    assert CliRunner().invoke(app, ["runs", "--db", str(path), "--json"]).exit_code == 0

    assert another_process_sees_a_shared_lock(path)
    held.close()
    assert not another_process_sees_a_shared_lock(path)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="lists open descriptors through /proc")
def test_read_commands_leave_no_connection_open_when_they_end(tmp_path):
    path = tmp_path / "h.db"
    open_store(path).close()

    def descriptors() -> list[str]:
        return [
            os.readlink(f"/proc/self/fd/{fd}")
            for fd in os.listdir("/proc/self/fd")
            if Path(f"/proc/self/fd/{fd}").exists()
        ]

    for command in (["runs"], ["leaderboard"], ["compare"], ["show", "1"]):
        CliRunner().invoke(app, [*command, "--db", str(path)])
        assert not [name for name in descriptors() if name.startswith(str(path))], command
