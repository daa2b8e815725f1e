"""Tabular data: pre-processing fitted on the training split, a learner on the shared trainer."""
