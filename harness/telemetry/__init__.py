"""What each phase of a run costs (time, memory, FLOPs) and the progress lines that show it."""
