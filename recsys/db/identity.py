"""Which database this is: an identity made at migration time (``database_identity``).

Model version ids start at 1 in every database, so two databases sharing one
artifact folder once wrote the same file names and served each other's models.
The training job files its weights under the identity and records it in them;
loading a version refuses a file recorded for another database.
"""

from __future__ import annotations

from sqlalchemy import Engine, select

from recsys.db.tables import database_identity


class ForeignArtifactError(ValueError):
    """A model file that was trained on another database."""


def read_identity(engine: Engine) -> str:
    """This database's identity."""
    with engine.connect() as connection:
        return connection.execute(select(database_identity.c.identity)).scalar_one()


def check_identity(identity: str, recorded: str | None, path: object) -> None:
    """Refuse a model file at ``path`` recorded for another database than ``identity``
    (None: a file from before identities, accepted)."""
    if recorded is not None and recorded != identity:
        raise ForeignArtifactError(
            f"the model file {path} was trained on another database ({recorded}, this one "
            f"is {identity}): two databases share one artifact folder"
        )
