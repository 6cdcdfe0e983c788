"""Whether the process that records a ``running`` run is still alive.

On this host a run is alive exactly while a process with its pid *and* its start time exists (a
pid alone can be reused after the run's process died); the heartbeat's age is never consulted
there, so a process busy for longer than ``HARNESS_STALE_AFTER`` is not reaped. A run on another
host cannot be asked: it is presumed dead once its heartbeat is older than ``stale_after()``.
"""

from __future__ import annotations

import math
import os
import socket
from typing import Any

import psutil

from leaderboard.errors import LeaderboardError

HEARTBEAT_S = 30.0  # a running run's process refreshes heartbeat_at this often
DEFAULT_STALE_AFTER_S = 600.0
START_TOLERANCE_S = 1.0  # psutil's start time is rounded to clock ticks


def stale_after() -> float:
    """``HARNESS_STALE_AFTER`` (seconds), checked: a number of at least two heartbeats."""
    raw = os.environ.get("HARNESS_STALE_AFTER")
    if raw is None or not raw.strip():
        return DEFAULT_STALE_AFTER_S
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 2 * HEARTBEAT_S:
        raise LeaderboardError(
            f"HARNESS_STALE_AFTER={raw!r}: expected seconds, a number >= {2 * HEARTBEAT_S:.0f} "
            f"(two heartbeats; default {DEFAULT_STALE_AFTER_S:.0f})."
        )
    return value


def this_process() -> tuple[str, int, float]:
    """(host, pid, start time) of the calling process, as recorded with a run."""
    return socket.gethostname(), os.getpid(), psutil.Process().create_time()


ALIVE, GONE, OTHER = "alive", "gone", "other"  # OTHER: the pid names a process that started at another time


def process_state(pid: int, started_at: float | None) -> str:
    """Whether the process with ``pid`` (that started at ``started_at``, where known) lives.

    A process this user may not inspect (another user's, ``/proc`` mounted with ``hidepid``) is
    taken to be alive when the pid exists, as ``kill(pid, 0)`` says; a zombie has ended.
    """
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return GONE
        actual = process.create_time()
    except psutil.ZombieProcess:
        return GONE
    except psutil.AccessDenied:
        return ALIVE
    except psutil.NoSuchProcess:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return GONE
        except PermissionError:
            return ALIVE  # hidden from psutil, but there
        return GONE
    if started_at is None or abs(actual - started_at) <= START_TOLERANCE_S:
        return ALIVE
    return OTHER


def stale_reason(run: Any, host: str, now: float, limit: float) -> str | None:
    """Why a ``running`` row (host, pid, process_started_at, heartbeat_at) is stale, or None.

    On this host a pid held by a process of another start time is taken for a reused pid only
    once the heartbeat has stopped too: a stepped wall clock moves psutil's start times, and must
    not reap a live run.
    """
    silent = now - run.heartbeat_at
    if run.host == host:
        state = process_state(run.pid, run.process_started_at)
        if state == ALIVE or (state == OTHER and silent <= limit):
            return None
        return f"interrupted: process {run.pid} on {host} ended without finishing"
    if silent > limit:
        return f"interrupted: no heartbeat from process {run.pid} on {run.host} for {silent:.0f} s"
    return None
