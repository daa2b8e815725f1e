"""The ``recsys`` command line: one Typer app assembled from the command modules."""

from __future__ import annotations

import signal
from types import FrameType

import typer

from recsys.cli.data_commands import dataset_app, db_app, ingest_app, load_app, quickstart
from recsys.cli.delete_commands import delete_app
from recsys.cli.interpret_commands import explain, interpret_app, similar
from recsys.cli.model_commands import models_app
from recsys.cli.recommend_command import recommend
from recsys.cli.serve_command import serve
from recsys.cli.tabular_commands import tabular_app
from recsys.cli.train_commands import evaluate, train
from recsys.cli.vision_commands import vision_app

app = typer.Typer(
    help="recsys: ratings in a SQL database in, recommendations out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _exit_on(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@app.callback()
def _cleanup_on_termination() -> None:
    """SIGTERM and SIGHUP end a command the way Ctrl-C does, through its ``finally``
    blocks: the default handlers stop the process where it stands, and a half-written
    export or model file was left behind (`recsys serve` sets its own)."""
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit_on)


app.add_typer(db_app, name="db")
app.add_typer(load_app, name="load")
app.add_typer(ingest_app, name="ingest")
app.add_typer(delete_app, name="delete")
app.add_typer(dataset_app, name="dataset")
app.add_typer(interpret_app, name="interpret")
app.add_typer(models_app, name="models")
app.add_typer(tabular_app, name="tabular")
app.add_typer(vision_app, name="vision")
for command in (quickstart, train, evaluate, recommend, similar, explain, serve):
    app.command()(command)
