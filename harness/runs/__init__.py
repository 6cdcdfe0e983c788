"""A run from plan to record: plan, execute, training, restore, recorder, folders."""
