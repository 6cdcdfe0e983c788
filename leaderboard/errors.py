"""The leaderboard's user-facing error (kept apart so importing it costs nothing)."""


class LeaderboardError(Exception):
    """A database the user pointed at cannot be used; the message says why."""


class MissingLeaderboard(LeaderboardError):
    """Nothing has been recorded at the given location yet."""
