"""What each flavor means: the check, how to predict, which metrics to keep.

Runs in the online worker (it imports river). The check follows river's own base
classes and tags: a ``multiclass`` model must say ``_multiclass``; a ``custom``
model only needs ``learn_one`` and ``predict_one``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from river import base, compose, metrics, utils

from deepaas_host.model.online import FLAVORS

__all__ = ["FLAVORS", "Flavor", "FlavorError", "describe", "flavor_of", "metric_set"]


class FlavorError(ValueError):
    """The model does not fit the flavor it was given."""


Prediction = tuple[Any, dict[Any, float] | None]


def _has(model: Any, *methods: str) -> bool:
    return all(callable(getattr(model, m, None)) for m in methods)


def _final_step(model: Any) -> Any:
    return list(model.steps.values())[-1] if isinstance(model, compose.Pipeline) else model


def _transform(model: Any, x: Any) -> Any:
    """``x`` as the final step of a pipeline sees it."""
    if not isinstance(model, compose.Pipeline):
        return x
    for step in list(model.steps.values())[:-1]:
        x = step.transform_one(x)
    return x


def _check_regression(model: Any) -> str | None:
    return None if isinstance(model, base.Regressor) else "is not a river regressor"


def _check_binary(model: Any) -> str | None:
    return None if isinstance(model, base.Classifier) else "is not a river classifier"


def _check_multiclass(model: Any) -> str | None:
    if not isinstance(model, base.Classifier):
        return "is not a river classifier"
    if not getattr(model, "_multiclass", False):
        return "is a binary classifier (river's _multiclass tag is false)"
    return None


def _check_clustering(model: Any) -> str | None:
    return None if isinstance(model, base.Clusterer) else "is not a river clusterer"


def _check_anomaly(model: Any) -> str | None:
    if isinstance(model, base.AnomalyDetector) or _has(model, "score_one", "learn_one"):
        return None
    return "is not a river anomaly detector (no score_one)"


def _check_custom(model: Any) -> str | None:
    return None if _has(model, "learn_one", "predict_one") else "lacks learn_one/predict_one"


def _predict_value(model: Any, x: Any) -> Prediction:
    return model.predict_one(x), None


def _predict_class(model: Any, x: Any) -> Prediction:
    proba = dict(model.predict_proba_one(x) or {})
    if not proba:
        return None, {}
    label = max(proba, key=lambda k: proba[k])
    return label, {k: float(v) for k, v in proba.items()}


def _predict_score(model: Any, x: Any) -> Prediction:
    return float(model.score_one(x)), None


def _learn_supervised(model: Any, x: Any, y: Any) -> None:
    model.learn_one(x, y)


def _learn_unsupervised(model: Any, x: Any, y: Any) -> None:
    model.learn_one(x)


def _learn_custom(model: Any, x: Any, y: Any) -> None:
    if y is None:
        model.learn_one(x)
    else:
        model.learn_one(x, y)


@dataclass(frozen=True)
class Flavor:
    name: str
    check: Callable[[Any], str | None]
    predict: Callable[[Any, Any], Prediction]
    learn: Callable[[Any, Any, Any], None]
    default_metrics: tuple[type[Any], ...]


_FLAVORS = {
    "regression": Flavor(
        "regression",
        _check_regression,
        _predict_value,
        _learn_supervised,
        (metrics.MAE, metrics.RMSE, metrics.R2),
    ),
    "binary": Flavor(
        "binary",
        _check_binary,
        _predict_class,
        _learn_supervised,
        (metrics.Accuracy, metrics.F1, metrics.ROCAUC, metrics.LogLoss),
    ),
    "multiclass": Flavor(
        "multiclass",
        _check_multiclass,
        _predict_class,
        _learn_supervised,
        (metrics.Accuracy, metrics.MacroF1, metrics.CrossEntropy),
    ),
    "clustering": Flavor(
        "clustering",
        _check_clustering,
        _predict_value,
        _learn_unsupervised,
        (metrics.Silhouette,),
    ),
    "anomaly": Flavor(
        "anomaly",
        _check_anomaly,
        _predict_score,
        _learn_unsupervised,
        (metrics.ROCAUC,),
    ),
    "custom": Flavor("custom", _check_custom, _predict_value, _learn_custom, ()),
}
assert tuple(_FLAVORS) == FLAVORS


def flavor_of(name: str, model: Any) -> Flavor:
    """The flavor ``name`` after checking that ``model`` fits it (FlavorError if not)."""
    flavor = _FLAVORS.get(name)
    if flavor is None:
        raise FlavorError(f"unknown flavor {name!r}; choose one of {', '.join(FLAVORS)}")
    problem = flavor.check(model)
    if problem is not None:
        raise FlavorError(f"{type(model).__name__} {problem}, so it cannot be {name!r}")
    return flavor


def describe(model: Any) -> str:
    """The estimator's steps, as listed for a model (``StandardScaler | LinearRegression``)."""
    steps = getattr(model, "steps", None)
    if isinstance(steps, dict):
        return " | ".join(type(step).__name__ for step in steps.values())
    return type(model).__name__


def _as_metric(spec: Any) -> metrics.base.Metric:
    metric = spec() if isinstance(spec, type) else spec
    if not isinstance(metric, metrics.base.Metric):
        raise FlavorError(f"{spec!r} is not a river metric")
    return metric


def _rolling(metric: metrics.base.Metric, window: int) -> Any:
    if not callable(getattr(type(metric), "revert", None)):
        return None
    # Nested objects (a confusion matrix) come as (class, params): the window gets
    # fresh ones of its own.
    params = {
        key: value
        for key, value in metric._get_params().items()
        if not (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], type))
    }
    try:
        return utils.Rolling(type(metric), window_size=window, **params)
    except Exception:  # a metric that cannot be rebuilt from its parameters
        return None


@dataclass
class MetricSet:
    """The metrics of one instance: overall and over a rolling window."""

    flavor: str
    overall: list[metrics.base.Metric]
    rolling: list[Any]
    window: int

    def update(
        self, model: Any, x: Any, y: Any, prediction: Any, proba: Mapping[Any, float] | None
    ) -> None:
        if self.flavor == "clustering":
            centers = getattr(_final_step(model), "centers", None)
            if centers is None or prediction is None:
                return
            xt = _transform(model, x)
            for m in [*self.overall, *self.rolling]:
                if m is not None:
                    m.update(xt, prediction, centers)
            return
        if y is None:
            return
        for m in [*self.overall, *self.rolling]:
            if m is None:
                continue
            needs_labels = getattr(m, "requires_labels", True)
            guess = prediction if needs_labels or proba is None else proba
            m.update(y, guess)

    def report(self) -> dict[str, Any]:
        def value(m: Any) -> float | None:
            v = float(m.get()) + 0.0  # no -0.0
            return v if math.isfinite(v) else None

        overall = {type(m).__name__: value(m) for m in self.overall}
        rolling: dict[str, Any] = {}
        for m, r in zip(self.overall, self.rolling, strict=True):
            if r is not None:
                rolling[type(m).__name__] = value(r)
        return {"overall": overall, "rolling": rolling, "window": self.window}


def metric_set(flavor: Flavor, custom: Sequence[Any] | None, window: int) -> MetricSet:
    """Fresh metrics for an instance: the plugin's own, else the flavor's defaults."""
    overall = [_as_metric(m) for m in custom] if custom else [m() for m in flavor.default_metrics]
    return MetricSet(flavor.name, overall, [_rolling(m, window) for m in overall], window)
