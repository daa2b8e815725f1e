"""The recsys HTTP service (FastAPI)."""
