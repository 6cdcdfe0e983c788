"""The run store: every run's config, scores, timings and environment in SQLite or PostgreSQL.

This package never imports torch; it is safe to import from fast CLI paths.
"""

from leaderboard.store import LeaderboardError, RunStore, open_store

__all__ = ["LeaderboardError", "RunStore", "open_store"]
