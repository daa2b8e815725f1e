"""The ``recsys`` command line: one Typer app assembled from the command modules."""

from __future__ import annotations

import typer

from recsys.cli.data import dataset_app, db_app, ingest_app, load_app, quickstart
from recsys.cli.interpret import explain, interpret_app, similar
from recsys.cli.training import evaluate, train

app = typer.Typer(
    help="recsys: ratings in a SQL database in, recommendations out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db_app, name="db")
app.add_typer(load_app, name="load")
app.add_typer(ingest_app, name="ingest")
app.add_typer(dataset_app, name="dataset")
app.add_typer(interpret_app, name="interpret")
for command in (quickstart, train, evaluate, similar, explain):
    app.command()(command)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: int = typer.Option(1, min=1, help="Worker processes."),
) -> None:
    """Serve the HTTP API with uvicorn."""
    import uvicorn  # the server is only needed by this command

    uvicorn.run("api.main:create_app", factory=True, host=host, port=port, workers=workers)
