"""Tabular predictions from the model `recsys tabular train` wrote, on CPU."""

from __future__ import annotations

from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter

from api.deps import TabularDep
from api.errors import ServiceError
from api.json_body import documented, json_body
from api.schemas import TabularPredictions, TabularRequest, TabularSchema
from recsys.tabular.processing import SchemaError

router = APIRouter(tags=["tabular"])


@router.get("/tabular/schema", response_model=TabularSchema)
async def tabular_schema(predictor: TabularDep) -> dict[str, Any]:
    """The columns a row needs, and the classes (empty for a regression)."""
    processor = predictor.processor
    return {
        "target": processor.y_name,
        "categorical": processor.cat_names,
        "continuous": processor.cont_names,
        "classes": processor.classes,
    }


@router.post(
    "/tabular/predict", response_model=TabularPredictions, openapi_extra=documented(TabularRequest)
)
def tabular_predict(
    body: Annotated[TabularRequest, json_body(TabularRequest)], predictor: TabularDep
) -> dict[str, Any]:
    """One prediction per row, with class probabilities when the model classifies.

    Rows are checked against the saved schema: a missing column, or text in a
    continuous column, is a 422 naming it (and the row). Unseen categories are fine.
    """
    frame = pd.DataFrame.from_records(body.rows)
    try:
        predicted = predictor.predict(frame)
    except SchemaError as error:
        raise ServiceError(422, "schema_mismatch", str(error)) from None
    classes = predictor.processor.classes
    return {
        "target": predictor.processor.y_name,
        "predictions": [
            {
                "prediction": row["prediction"],
                "probabilities": {c: float(row[c]) for c in classes} if classes else None,
            }
            for row in predicted.to_dict("records")
        ],
    }
