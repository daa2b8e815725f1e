"""Hiding items from every list: discontinued products, takedowns.

A hidden item stays in the database with its ratings (models still learn from
them) but is never recommended, offered as similar, listed as popular or drawn
on the explorer; every served worker follows the change within its ratings poll.
"""

from __future__ import annotations

from sqlalchemy import Engine, select, update

from recsys.db.engine import write_transaction
from recsys.db.tables import items


def read_hidden(engine: Engine) -> frozenset[str]:
    """The external ids of the hidden items."""
    with engine.connect() as connection:
        rows = connection.execute(select(items.c.external_id).where(items.c.hidden)).scalars()
        return frozenset(rows)


def set_hidden(engine: Engine, item_id: str, hidden: bool) -> bool:
    """Hide or show ``item_id``; False when the database has no such item."""
    with write_transaction(engine) as connection:
        result = connection.execute(
            update(items).where(items.c.external_id == item_id).values(hidden=hidden)
        )
        return result.rowcount == 1
