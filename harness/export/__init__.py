"""Getting a run out as files: its encoder (harness export --model) and mteb's results layout (--mteb)."""
