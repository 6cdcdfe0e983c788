"""The run store: every run's config, scores, timings and environment in SQLite or PostgreSQL.

This package never imports torch. Importing it is free (its modules load when used), so fast CLI
paths can name its errors; ``leaderboard.store.open_store`` opens a database.
"""
