"""The leaderboard's user-facing errors (kept apart so importing them costs nothing)."""

from harness.errors import HarnessError


class LeaderboardError(HarnessError):
    """A database the user pointed at cannot be used; the message says why."""


class MissingLeaderboard(LeaderboardError):
    """Nothing has been recorded at the given location yet."""
