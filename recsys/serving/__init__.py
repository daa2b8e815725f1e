"""The serving policy, decided once for the API, the CLI and the notebook alike: how a
model version is loaded for serving, which loaded model answers what (``roles``), and
what a user gets (``answers``)."""
