"""Training data (triplets, NLI, the offline set) and the rows of task files."""
