"""The similarity explorer: PCA map data, and a page that draws it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from api.deps import ModelDep
from api.schemas import ExplorerData

router = APIRouter(tags=["explorer"])
PAGE = Path(__file__).resolve().parents[1] / "templates" / "explorer.html"


@router.get("/explorer/items", response_model=ExplorerData)
def explorer_items(
    model: ModelDep,
    min_ratings: Annotated[int, Query(ge=0)] = 20,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 500,
) -> dict:
    """Items on the first three principal components, most rated first."""
    frame = model.visible_explorer().copy()
    frame["n_ratings"] = frame["n_ratings"].fillna(0).astype(int)
    frame = frame[frame["n_ratings"] >= min_ratings]
    frame = frame.sort_values("n_ratings", ascending=False, kind="stable").head(limit)
    has_pc3 = "pc3" in frame
    items = [
        {
            "item_id": str(row.item_id),
            "title": row.title if isinstance(row.title, str) else None,
            "genres": list(row.genres) if isinstance(row.genres, list) else [],
            "n_ratings": int(row.n_ratings),
            "bias": None if row.bias is None or row.bias != row.bias else float(row.bias),
            "pc1": float(row.pc1),
            "pc2": float(row.pc2),
            "pc3": float(row.pc3) if has_pc3 else None,
        }
        for row in frame.itertuples()
    ]
    return {
        "model_version": model.version.id,
        "explained_variance": model.explained_variance,
        "items": items,
    }


@router.get("/explorer", response_class=HTMLResponse, include_in_schema=False)
def explorer_page() -> HTMLResponse:
    """A single page: the map, a title search, and the neighbours of a clicked item."""
    return HTMLResponse(PAGE.read_text())
