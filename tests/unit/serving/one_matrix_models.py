"""Small fitted models for the one-matrix tests: a logistic regression, a histogram gradient boosting and a random
forest on numeric, integer, boolean and categorical inputs (with bounds and an allowed set), and their holdout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from mlops_assets.model.pipeline_model import PipelineModel, fit_pipeline_model
from mlops_assets.model.training import make_estimator
from mlops_assets.spec import PipelineSpec, load_spec

ESTIMATORS = {
    "logreg": ("sklearn.linear_model.LogisticRegression", {"max_iter": 1000}),
    "hgb": ("sklearn.ensemble.HistGradientBoostingClassifier", {"max_iter": 20, "random_state": 0}),
    "rf": ("sklearn.ensemble.RandomForestClassifier", {"n_estimators": 10, "max_depth": 8, "random_state": 0}),
}
INPUTS = ["a", "b", "k", "color", "f"]  # the spec's order; ``color`` is categorical, the rest numeric


def frame(rows: int = 600, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(
        {
            "a": rng.normal(size=rows),
            "b": rng.normal(size=rows) * 10,
            "k": rng.integers(0, 5, rows),
            "color": rng.choice(["red", "green", "blue"], rows),
            "f": rng.integers(0, 2, rows).astype(bool),
        }
    )
    data["id"] = [f"r{i}" for i in range(rows)]
    data["label"] = ((data.a + data.b / 10 + (data.color == "red")) > 0.3).astype(int)
    return data


def fit(folder: Path, kind: str, data: pd.DataFrame) -> tuple[PipelineSpec, PipelineModel, pd.DataFrame]:
    """The spec, the model fitted on 80% of ``data``, and the 20% held out."""
    data.to_csv(folder / "data.csv", index=False)
    estimator, params = ESTIMATORS[kind]
    columns = {
        "a": {"dtype": "float", "ge": -10, "le": 10},
        "b": {"dtype": "float", "nullable": False},
        "k": {"dtype": "int", "isin": [0, 1, 2, 3, 4]},
        "color": {"dtype": "str", "isin": ["red", "green", "blue"]},
        "f": {"dtype": "bool"},
        "id": {"dtype": "str"},
        "label": {"dtype": "int"},
    }
    spec = {
        "name": f"one_matrix_{kind}",
        "task": "binary",
        "target": "label",
        "id_column": "id",
        "source": {"path": "data.csv"},
        "schema": {"columns": columns},
        "model": {"estimator": estimator, "params": params},
    }
    path = folder / f"{kind}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    loaded = load_spec(path)
    holdout = data.sample(frac=0.2, random_state=0)
    model = fit_pipeline_model(loaded, data.drop(holdout.index), make_estimator(loaded, str(path)))
    return loaded, model, holdout
