"""The compiled fast path: a fitted ``PipelineModel`` lowered to a few numpy operations per request.

For one row, scikit-learn's arithmetic is small and its per-call overhead is not: input validation and array-API
dispatch on every call and, for forests, a Python loop with a joblib dispatch over the trees, so for one row the
compiled model is faster than ``PipelineModel.predict`` for linear models, boosted trees and forests alike
(bench/RESULTS.md, "Serving"). Each tree level costs a few array operations over all trees at once, so from a few
hundred rows scikit-learn's compiled loops catch up: batch scoring (``batch_model``) takes only the linear
functions from here.

Lowering reads the fitted attributes (coefficients, tree node arrays) and evaluates them as scikit-learn does:
``sklearn.tree`` compares the input cast to float32 with float64 thresholds, ``HistGradientBoosting`` compares
float64; NaN follows each node's learnt missing direction; tree outputs are added in tree order
(``np.add.accumulate``, not the pairwise ``np.sum``), so sums, and ties between classes, match to the last bit.

Equality is checked, not assumed: the server uses a compiled model only after ``verify`` has passed on the
holdout at deploy time, and ``PipelineModel.predict`` otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit

from mlops_assets.model.features import Columns, FeatureTransformer
from mlops_assets.model.pipeline_model import PipelineModel, Prediction


def _binary_proba(raw: np.ndarray) -> np.ndarray:
    """Both class columns from one logit column, as scikit-learn's binomial loss and ``LogisticRegression``."""
    positive = expit(raw.reshape(-1))
    proba = np.empty((len(positive), 2))  # as np.stack([1 - positive, positive], axis=1), without its checks
    np.subtract(1, positive, out=proba[:, 0])
    proba[:, 1] = positive
    return proba


def _softmax(raw: np.ndarray) -> np.ndarray:
    """``sklearn.utils.extmath.softmax`` without its array-API dispatch, operation for operation."""
    z = raw - raw.max(axis=1).reshape(-1, 1)
    np.exp(z, out=z)
    return z / z.sum(axis=1).reshape(-1, 1)


# What turns the summed raw output into the prediction: class probabilities, or values for regression.
OUTPUTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": lambda raw: raw.reshape(-1),
    "log": lambda raw: np.exp(raw.reshape(-1)),
    "proportions": lambda raw: raw,  # forests: the mean of the trees' class fractions already is the probability
    "logit": _binary_proba,
    "softmax": _softmax,
}


@dataclass(frozen=True)
class LinearFunction:
    """``features @ coef + intercept``, then the output function: what every linear model's predict reduces to."""

    coef: np.ndarray  # (n_features,) or (n_features, n_outputs): the estimator's ``coef_.T``, same memory layout
    intercept: np.ndarray
    output: str  # a key of OUTPUTS

    def __call__(self, features: np.ndarray) -> np.ndarray:
        return OUTPUTS[self.output](features @ self.coef + self.intercept)


@dataclass(frozen=True)
class Tree:
    """One tree's nodes with local indices; a leaf is its own left and right child, so walking past it stays."""

    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray  # where NaN goes at each node
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray  # (n_nodes, n_outputs): what reaching the node as a leaf adds to the ensemble's output
    depth: int  # edges from the root to the deepest leaf

    @classmethod
    def stump(cls, value: np.ndarray) -> Tree:
        """A single leaf that adds ``value`` to every row: a boosting model's baseline, summed first like sklearn's."""
        zero = np.zeros(1, dtype=np.intp)
        return cls(zero, np.zeros(1), np.zeros(1, dtype=bool), zero, zero, value.reshape(1, -1), depth=0)


@dataclass(frozen=True)
class TreeEnsemble:
    """All trees' nodes concatenated (global indices), evaluated for every row and tree at once.

    Each of ``depth`` steps moves every (row, tree) pair one level down with a handful of array operations,
    instead of one Python call per tree.
    """

    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    roots: np.ndarray  # the root node of each tree, in the order their outputs are summed
    depth: int
    float32: bool  # sklearn.tree compares features cast to float32 against float64 thresholds
    average: bool  # forests average their trees; boosting sums them
    output: str  # a key of OUTPUTS

    @classmethod
    def of(cls, trees: Sequence[Tree], *, float32: bool, average: bool, output: str) -> TreeEnsemble:
        sizes = [len(tree.feature) for tree in trees]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)

        def joined(name: str) -> np.ndarray:
            return np.concatenate([getattr(tree, name) for tree in trees])

        def linked(name: str) -> np.ndarray:
            return np.concatenate([getattr(tree, name) + offset for tree, offset in zip(trees, offsets, strict=True)])

        return cls(
            feature=joined("feature").astype(np.intp),
            threshold=joined("threshold").astype(np.float64),
            missing_left=joined("missing_left").astype(bool),
            left=linked("left").astype(np.intp),
            right=linked("right").astype(np.intp),
            value=joined("value").astype(np.float64),
            roots=offsets,
            depth=max(tree.depth for tree in trees),
            float32=float32,
            average=average,
            output=output,
        )

    def leaves(self, features: np.ndarray) -> np.ndarray:
        """The leaf each row reaches in each tree, shape (n_rows, n_trees)."""
        x = features.astype(np.float32) if self.float32 else features
        rows = np.arange(len(x))[:, None]
        node = np.broadcast_to(self.roots, (len(x), len(self.roots)))
        has_nan = bool(np.isnan(x).any())
        for _ in range(self.depth):
            value = x[rows, self.feature[node]]
            go_left = value <= self.threshold[node]  # NaN compares False: it goes right unless the node says left
            if has_nan:
                go_left |= np.isnan(value) & self.missing_left[node]
            node = np.where(go_left, self.left[node], self.right[node])
        return node

    def __call__(self, features: np.ndarray) -> np.ndarray:
        # Tree by tree, as scikit-learn adds them: a pairwise sum could differ in the last bit and break a tie.
        total = np.add.accumulate(self.value[self.leaves(features)], axis=1)[:, -1]
        if self.average:
            total = total / len(self.roots)
        return OUTPUTS[self.output](total)


Evaluator = LinearFunction | TreeEnsemble


@dataclass(frozen=True)
class CompiledModel:
    """A ``PipelineModel`` whose estimator runs as numpy arrays; same features, same ``predict`` contract."""

    task: str
    input_columns: list[str]
    classes: list[Any] | None
    transformer: FeatureTransformer
    evaluator: Evaluator  # features -> class probabilities (classifiers) or predictions (regression)
    description: str

    def predict(self, columns: Columns) -> Prediction:
        features = self.transformer.transform(columns)
        return Prediction.of(self.classes, self.evaluator(features), features)


def compile_model(model: PipelineModel) -> CompiledModel | None:
    """The model with its estimator lowered to numpy, or None when the estimator type is not supported.

    Supported: the linear models in ``LINEAR``, decision trees, random forests and extra trees, gradient
    boosting (default ``init`` only) and histogram gradient boosting (numeric splits only).

    >>> compile_model(PipelineModel("regression", [], FeatureTransformer({}, []), object(), None)) is None
    True
    """
    estimator = model.estimator
    kind = type(estimator).__name__
    lower = LOWERINGS.get(kind)
    if lower is None or not type(estimator).__module__.startswith("sklearn."):
        return None
    if hasattr(estimator, "classes_") != (model.classes is not None) or getattr(estimator, "n_outputs_", 1) != 1:
        return None
    lowered = lower(estimator)
    if lowered is None:
        return None
    evaluator, size = lowered
    return CompiledModel(
        task=model.task,
        input_columns=model.input_columns,
        classes=model.classes,
        transformer=model.transformer,
        evaluator=evaluator,
        description=f"compiled:{kind}({size})",
    )


def _linear(estimator: Any) -> tuple[Evaluator, str] | None:
    coef = estimator.coef_
    if hasattr(estimator, "classes_"):
        # LogisticRegression.predict_proba: a logit for two classes, else the softmax of the decision function.
        output = "logit" if len(estimator.classes_) <= 2 else "softmax"
    elif coef.ndim == 1:
        output = "identity"
    else:
        return None
    return LinearFunction(coef.T, np.asarray(estimator.intercept_), output), f"{coef.shape[-1]} features"


def _sklearn_tree(tree: Any, value: np.ndarray) -> Tree:
    """A ``sklearn.tree._tree.Tree`` whose leaves add ``value`` (one row per node)."""
    leaf = tree.children_left == -1
    nodes = np.arange(tree.node_count)
    return Tree(
        feature=np.where(leaf, 0, tree.feature),
        threshold=tree.threshold,
        missing_left=tree.missing_go_to_left.astype(bool),
        left=np.where(leaf, nodes, tree.children_left),
        right=np.where(leaf, nodes, tree.children_right),
        value=value,
        depth=tree.max_depth,
    )


def _forest(estimator: Any) -> tuple[Evaluator, str]:
    """A decision tree, random forest or extra trees: the mean of per-tree leaf values (class fractions)."""
    trees = getattr(estimator, "estimators_", [estimator])
    lowered = [_sklearn_tree(t.tree_, t.tree_.value[:, 0, :]) for t in trees]
    output = "proportions" if hasattr(estimator, "classes_") else "identity"
    ensemble = TreeEnsemble.of(lowered, float32=True, average=True, output=output)
    return ensemble, _trees(len(trees), ensemble.depth)


def _gradient_boosting(estimator: Any) -> tuple[Evaluator, str] | None:
    """``init + learning_rate * tree`` per stage and class, as ``sklearn.ensemble._gradient_boosting``."""
    if estimator.init not in (None, "zero"):
        return None  # a user-given init estimator would have to be compiled too
    output = _link_output(estimator._loss.link) if hasattr(estimator, "classes_") else "identity"
    if output is None:
        return None
    stages = estimator.estimators_
    n_outputs = stages.shape[1]
    # The default init (a prior or mean) predicts the same raw value for every row: compute it once.
    init = estimator._raw_predict_init(np.zeros((1, estimator.n_features_in_)))[0]
    trees = [Tree.stump(init)]
    for stage in stages:
        for k, member in enumerate(stage):
            value = np.zeros((member.tree_.node_count, n_outputs))
            value[:, k] = estimator.learning_rate * member.tree_.value[:, 0, 0]
            trees.append(_sklearn_tree(member.tree_, value))
    ensemble = TreeEnsemble.of(trees, float32=True, average=False, output=output)
    return ensemble, _trees(stages.size, ensemble.depth)


def _hist_gradient_boosting(estimator: Any) -> tuple[Evaluator, str] | None:
    """Baseline plus each iteration's trees, compared in float64 against ``num_threshold``."""
    output = _link_output(estimator._loss.link)
    if output is None or estimator._preprocessor is not None:
        return None  # categorical features: splits on bitsets, not thresholds
    n_outputs = estimator.n_trees_per_iteration_
    trees = [Tree.stump(estimator._baseline_prediction.reshape(-1))]
    for iteration in estimator._predictors:
        for k, predictor in enumerate(iteration):
            nodes = predictor.nodes
            if nodes["is_categorical"].any():
                return None
            leaf = nodes["is_leaf"].astype(bool)
            index = np.arange(len(nodes))
            value = np.zeros((len(nodes), n_outputs))
            value[:, k] = nodes["value"]
            tree = Tree(
                feature=np.where(leaf, 0, nodes["feature_idx"]),
                threshold=nodes["num_threshold"],
                missing_left=nodes["missing_go_to_left"].astype(bool),
                left=np.where(leaf, index, nodes["left"]),
                right=np.where(leaf, index, nodes["right"]),
                value=value,
                depth=int(nodes["depth"].max()),
            )
            trees.append(tree)
    ensemble = TreeEnsemble.of(trees, float32=False, average=False, output=output)
    return ensemble, _trees(len(trees) - 1, ensemble.depth)


def _trees(count: int, depth: int) -> str:
    return f"{count} tree{'s' if count != 1 else ''}, depth {depth}"


def _link_output(link: Any) -> str | None:
    """The output for a scikit-learn loss link's inverse; None for links not compiled (e.g. the exponential loss)."""
    return {"IdentityLink": "identity", "LogLink": "log", "LogitLink": "logit", "MultinomialLogit": "softmax"}.get(
        type(link).__name__
    )


LINEAR = (
    "LogisticRegression",
    "LogisticRegressionCV",
    "LinearRegression",
    "Ridge",
    "RidgeCV",
    "Lasso",
    "LassoCV",
    "ElasticNet",
    "ElasticNetCV",
    "SGDRegressor",
)
FORESTS = (
    "DecisionTreeClassifier",
    "DecisionTreeRegressor",
    "RandomForestClassifier",
    "RandomForestRegressor",
    "ExtraTreesClassifier",
    "ExtraTreesRegressor",
)
# Matched by class name (scikit-learn's own classes only), so importing this module does not import scikit-learn.
LOWERINGS: dict[str, Callable[[Any], tuple[Evaluator, str] | None]] = {
    **dict.fromkeys(LINEAR, _linear),
    **dict.fromkeys(FORESTS, _forest),
    "GradientBoostingClassifier": _gradient_boosting,
    "GradientBoostingRegressor": _gradient_boosting,
    "HistGradientBoostingClassifier": _hist_gradient_boosting,
    "HistGradientBoostingRegressor": _hist_gradient_boosting,
}


@dataclass(frozen=True)
class FastPathCheck:
    """Whether a compiled model answers like the Python model on the given rows, and by how much it differs."""

    passed: bool
    rows: int
    max_abs_diff: float  # largest |Δ| of class probabilities (classifiers) or predictions (regression)
    label_agreement: float  # share of rows with the same label; for regression, with |Δ| <= tolerance
    reason: str


def verify(compiled: CompiledModel, model: PipelineModel, columns: Columns, tolerance: float) -> FastPathCheck:
    """Compare ``compiled`` with ``model`` on ``columns`` (the holdout): passed iff every label agrees and
    the largest difference is at most ``tolerance``. An exception from the compiled model fails the check.
    """
    rows = len(columns[model.input_columns[0]]) if model.input_columns else 0
    if rows == 0:
        return FastPathCheck(False, 0, float("nan"), 0.0, "no rows to compare on")
    expected = model.predict(columns)
    try:
        actual = compiled.predict(columns)
        if expected.proba is None:
            diff = np.abs(np.asarray(actual.labels, dtype=float) - expected.labels)
            same = diff <= tolerance
        else:
            diff = np.abs(np.asarray(actual.proba, dtype=float) - expected.proba)
            same = np.asarray(actual.labels == expected.labels, dtype=bool).reshape(rows)
        max_abs_diff = float(diff.max())
    except Exception as exc:
        return FastPathCheck(False, rows, float("nan"), 0.0, f"compiled model failed on {rows} rows: {exc!r}")
    agreement = float(same.mean())
    within = max_abs_diff <= tolerance  # False for NaN
    symbol = "|Δp|" if expected.proba is not None else "|Δy|"
    verdict = "<=" if within else ">"
    reason = f"{rows} rows: max {symbol} {max_abs_diff:.1e} {verdict} {tolerance:g}"
    if expected.proba is not None:
        reason += ", labels identical" if same.all() else f", labels differ on {rows - int(same.sum())} rows"
    return FastPathCheck(within and bool(same.all()), rows, max_abs_diff, agreement, reason)
