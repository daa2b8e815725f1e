"""The command that serves the HTTP API."""

from __future__ import annotations

import typer


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: int = typer.Option(1, min=1, help="Worker processes."),
) -> None:
    """Serve the HTTP API with uvicorn (the active model version, loaded at start)."""
    import uvicorn  # only this command needs the server

    uvicorn.run("api.main:create_app", factory=True, host=host, port=port, workers=workers)
