"""The training loop every learner shares, with its callbacks, schedules and metrics."""
