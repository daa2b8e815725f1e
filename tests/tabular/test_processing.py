"""Tabular pre-processing: fitted on training rows, replayed from its saved state."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from recsys.tabular.processing import MISSING, UNKNOWN, SchemaError, TabularProcessor
from recsys.tabular.tabular_learner import TabularData, load_tabular, tabular_learner
from tests.factories import easy_rule_rows


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "colour": ["red", "blue", None, "red"],
            "size": [1.0, np.nan, 3.0, 5.0],
            "label": ["yes", "no", "yes", "no"],
        }
    )


def test_missing_values_get_the_median_a_flag_and_a_category() -> None:
    processor = TabularProcessor.fit(frame(), ["colour"], ["size"], "label")
    assert processor.all_cat_names == ["colour", "size_na"]
    assert processor.cardinalities == [4, 2]  # unknown, missing, blue, red; flag
    cats = processor.categorical(frame())
    assert cats[:, 0].tolist() == [3, 2, MISSING, 3]
    assert cats[:, 1].tolist() == [0, 1, 0, 0]
    sizes = processor.continuous(frame())[:, 0]
    filled = np.array([1.0, 3.0, 3.0, 5.0])  # the median of 1, 3, 5 fills the gap
    expected = (filled - filled.mean()) / filled.std()
    assert torch.allclose(sizes, torch.tensor(expected, dtype=torch.float32))
    assert processor.target(frame()).tolist() == [1, 0, 1, 0]


def test_unseen_categories_map_to_unknown_and_the_state_round_trips() -> None:
    processor = TabularProcessor.fit(frame(), ["colour"], ["size"], "label")
    again = TabularProcessor.from_state(processor.state())
    new = pd.DataFrame({"colour": ["green", "blue"], "size": [None, 2.0]})
    assert again.categorical(new)[:, 0].tolist() == [UNKNOWN, 2]
    assert torch.equal(again.continuous(new), processor.continuous(new))


def test_schema_errors_name_the_column_and_row() -> None:
    processor = TabularProcessor.fit(frame(), ["colour"], ["size"], "label")
    with pytest.raises(SchemaError, match="missing column\\(s\\): size"):
        processor.continuous(pd.DataFrame({"colour": ["red"]}))
    with pytest.raises(SchemaError, match="column 'size' is continuous, but row 2 holds 'big'"):
        processor.continuous(pd.DataFrame({"size": ["1", "big"]}))
    with pytest.raises(SchemaError, match="target 'maybe' is not one of the training classes"):
        processor.target(pd.DataFrame({"label": ["yes", "maybe"]}))


def test_a_learner_separates_an_easy_rule_and_predicts_after_loading(tmp_path) -> None:
    data_frame = easy_rule_rows()
    torch.manual_seed(0)
    data = TabularData.from_df(data_frame, "y", batch_size=128)
    assert data.processor.cat_names == ["group"]
    assert data.processor.cont_names == ["x"]
    learn = tabular_learner(data, layers=(32,), progress=False, device="cpu")
    learn.fit_one_cycle(5, 1e-2)
    assert learn.recorder.rows[-1]["accuracy"] > 0.95

    path = learn.save(tmp_path / "tab.pt")
    rows = pd.DataFrame({"group": ["a", "b", "c", "zzz"], "x": [0.0, 2.5, -1.0, -1.0]})
    predicted = load_tabular(path).predict(rows)
    assert predicted["prediction"].tolist()[:3] == ["hi", "hi", "lo"]
    assert predicted["prediction"].iloc[3] in {"hi", "lo"}  # an unseen group still answers
    assert np.allclose(predicted[["hi", "lo"]].sum(axis=1), 1.0)

    top = learn.interpret().top_losses()
    assert len(top) == 400
    assert set(top["item"]) == set(data.valid_index)
    # Items are the frame's own row labels: each names the row with that answer.
    assert (data_frame.loc[top["item"], "y"].to_numpy() == top["actual"].to_numpy()).all()


def test_whole_floats_and_integers_are_one_category() -> None:
    training = pd.DataFrame({"rooms": [1, 2, 3, 2], "label": ["a", "b", "a", "b"]})
    processor = TabularProcessor.fit(training, ["rooms"], [], "label")
    # JSON rows, or a column with gaps, bring 2.0 where training saw 2.
    asked = pd.DataFrame({"rooms": [2.0, 3, None, 2.5]})
    codes = processor.categorical(asked)[:, 0].tolist()
    two, three = processor.categorical(pd.DataFrame({"rooms": [2, 3]}))[:, 0].tolist()
    assert codes == [two, three, MISSING, UNKNOWN]


def test_cli_trains_from_a_csv_and_predicts_another(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from recsys.cli import app
    from recsys.settings import get_settings

    monkeypatch.setenv("RECSYS_ARTIFACT_DIR", str(tmp_path / "artifacts"))
    monkeypatch.setenv("RECSYS_DEVICE", "cpu")
    get_settings.cache_clear()
    runner = CliRunner()
    easy_rule_rows().to_csv(tmp_path / "train.csv", index=False)
    result = runner.invoke(
        app, ["tabular", "train", str(tmp_path / "train.csv"), "--target", "y", "--epochs", "5"]
    )
    assert result.exit_code == 0, result.output
    assert "categorical: group; continuous: x" in result.output
    assert (tmp_path / "artifacts" / "tabular" / "model.pt").is_file()

    pd.DataFrame({"group": ["a", "c"], "x": [0.0, -1.0]}).to_csv(tmp_path / "new.csv", index=False)
    output = tmp_path / "predictions.csv"
    result = runner.invoke(
        app, ["tabular", "predict", str(tmp_path / "new.csv"), "--output", str(output)]
    )
    assert result.exit_code == 0, result.output
    assert pd.read_csv(output)["prediction"].tolist() == ["hi", "lo"]

    pd.DataFrame({"group": ["a"]}).to_csv(tmp_path / "short.csv", index=False)
    result = runner.invoke(app, ["tabular", "predict", str(tmp_path / "short.csv")])
    assert result.exit_code == 1
    assert "missing column(s): x" in result.output
    result = runner.invoke(app, ["tabular", "train", str(tmp_path / "train.csv"), "--target", "z"])
    assert result.exit_code == 1
    assert "no column 'z'" in result.output
    get_settings.cache_clear()
