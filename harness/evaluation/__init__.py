"""What --tasks names, and evaluating an encoder on it through mteb."""
