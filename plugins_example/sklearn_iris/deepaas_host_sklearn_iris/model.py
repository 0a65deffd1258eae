"""A real scikit-learn model: a random forest on the iris data set.

The data set ships with scikit-learn (``sklearn.datasets.load_iris``), so
nothing is downloaded. ``warm`` fits the serving model (a fraction of a
second); ``predict`` classifies either one flower given by its four
measurements or every row of an uploaded CSV file; ``train`` fits a new forest
on a train/test split and returns its test metrics.

Input the argument schema cannot judge (a partial set of measurements, both
inputs at once, a broken CSV file) is refused with
:class:`~deepaas_host.model.v2.InvalidInput` naming the argument, which the
host answers with a 422.

The response has a declared schema (:class:`Response`), so ``predict``
returns the whole response and the host validates it.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from marshmallow import Schema, fields, validate

from deepaas_host.model.v2 import (
    BaseModel,
    File,
    InvalidInput,
    UploadedFile,
    artifact_dir,
    report_progress,
)

from . import __version__

if TYPE_CHECKING:
    from sklearn.ensemble import RandomForestClassifier

#: Feature argument names, in the order the model expects them; also the CSV
#: column names.
FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
#: Largest number of rows accepted in one CSV upload.
MAX_CSV_ROWS = 10_000

_FEATURE_HELP = {
    "sepal_length": ("Sepal length in cm (iris data: 4.3 to 7.9).", 15.0),
    "sepal_width": ("Sepal width in cm (iris data: 2.0 to 4.4).", 10.0),
    "petal_length": ("Petal length in cm (iris data: 1.0 to 6.9).", 15.0),
    "petal_width": ("Petal width in cm (iris data: 0.1 to 2.5).", 10.0),
}


class Prediction(Schema):
    """One classified flower."""

    label = fields.Str(required=True, metadata={"description": "Predicted species."})
    probability = fields.Float(
        required=True, metadata={"description": "Probability of the predicted label."}
    )
    probabilities = fields.Dict(
        keys=fields.Str(),
        values=fields.Float(),
        required=True,
        metadata={"description": "Probability of every species."},
    )


class Response(Schema):
    """The predict response: one prediction per input flower."""

    status = fields.Str(required=True, metadata={"description": "Always 'OK'."})
    predictions = fields.List(
        fields.Nested(Prediction),
        required=True,
        metadata={"description": "One prediction per flower, in input order."},
    )


def read_csv(path: str) -> list[list[float]]:
    """Read feature rows from a CSV file with a header naming the four features.

    Column names are matched case-insensitively; extra columns are ignored.
    Raises :class:`InvalidInput` (a ``ValueError``) for the ``data`` argument,
    with a message naming the problem.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise _bad_csv("the CSV file is empty; expected a header row")
            columns = {name.strip().lower(): i for i, name in enumerate(header)}
            missing = [name for name in FEATURES if name not in columns]
            if missing:
                raise _bad_csv(
                    f"the CSV header lacks column(s) {', '.join(missing)}; "
                    f"expected {', '.join(FEATURES)}"
                )
            indexes = [columns[name] for name in FEATURES]
            rows: list[list[float]] = []
            for line_no, record in enumerate(reader, start=2):
                if not any(cell.strip() for cell in record):
                    continue  # blank line
                if len(rows) >= MAX_CSV_ROWS:
                    raise _bad_csv(f"the CSV file has more than {MAX_CSV_ROWS} rows")
                rows.append(_parse_row(record, indexes, line_no))
    except UnicodeDecodeError as exc:
        raise _bad_csv("the uploaded file is not a UTF-8 CSV file") from exc
    if not rows:
        raise _bad_csv("the CSV file has a header but no data rows")
    return rows


def _bad_csv(message: str) -> InvalidInput:
    return InvalidInput(message, argument="data")


def _parse_row(record: Sequence[str], indexes: Sequence[int], line_no: int) -> list[float]:
    """Convert the feature cells of one CSV record to finite floats."""
    row = []
    for name, index in zip(FEATURES, indexes, strict=True):
        cell = record[index].strip() if index < len(record) else ""
        try:
            value = float(cell)
        except ValueError:
            raise _bad_csv(f"CSV line {line_no}, column {name}: {cell!r} is not a number") from None
        if not math.isfinite(value):
            raise _bad_csv(f"CSV line {line_no}, column {name}: {cell!r} is not finite")
        row.append(value)
    return row


class IrisModel(BaseModel):
    """Random-forest classifier of iris species."""

    schema = Response
    #: Format of the versions its training writes.
    engine = "joblib"

    def __init__(self) -> None:
        """Create the model; the forest is fitted by :meth:`warm`."""
        self._model: RandomForestClassifier | None = None
        self._classes: list[str] = []

    def get_metadata(self) -> Mapping[str, Any]:
        """Return the model metadata."""
        return {
            "name": "iris",
            "description": (
                "Random-forest classifier of iris species (scikit-learn, iris "
                "data set). Predicts from four measurements or a CSV file."
            ),
            "author": "deepaas-host contributors",
            "license": "Apache-2.0",
            "version": __version__,
            "url": "https://example.org/deepaas-host/plugins/sklearn-iris",
        }

    def warm(self) -> None:
        """Fit the serving model on the whole iris data set."""
        from sklearn.datasets import load_iris
        from sklearn.ensemble import RandomForestClassifier

        iris = load_iris()
        model = RandomForestClassifier(n_estimators=50, random_state=0)
        model.fit(iris.data, iris.target)
        self._classes = [str(name) for name in iris.target_names]
        self._model = model

    # -- predict ---------------------------------------------------------------

    def get_predict_args(self) -> Mapping[str, fields.Field]:
        """Return the four measurements (all or none) and the CSV file argument."""
        args: dict[str, fields.Field] = {}
        for name in FEATURES:
            help_text, maximum = _FEATURE_HELP[name]
            args[name] = fields.Float(
                required=False,
                load_default=None,
                validate=validate.Range(min=0.0, max=maximum),
                metadata={"description": help_text},
            )
        args["data"] = File(
            required=False,
            load_default=None,
            metadata={
                "description": (
                    "CSV file with a header row naming the columns "
                    f"{', '.join(FEATURES)} and one flower per row. "
                    "Give either this file or all four measurements."
                )
            },
        )
        return args

    def predict(  # type: ignore[override]
        self,
        *,
        sepal_length: float | None = None,
        sepal_width: float | None = None,
        petal_length: float | None = None,
        petal_width: float | None = None,
        data: UploadedFile | None = None,
    ) -> dict[str, Any]:
        """Classify the flower(s); return the whole response (see :class:`Response`).

        Raises :class:`InvalidInput` naming the arguments at fault unless
        exactly one input is given: all four measurements, or a CSV file.
        """
        values = {
            "sepal_length": sepal_length,
            "sepal_width": sepal_width,
            "petal_length": petal_length,
            "petal_width": petal_width,
        }
        given = [name for name, value in values.items() if value is not None]
        if data is not None:
            if given:
                raise InvalidInput(
                    "give either a CSV file in 'data' or the four measurements, "
                    f"not both (got 'data' and {', '.join(given)})",
                    argument=("data", *given),
                )
            rows = read_csv(data.filename)
        elif len(given) == len(FEATURES):
            rows = [[float(values[name]) for name in FEATURES]]  # type: ignore[arg-type]
        elif given:
            missing = [name for name in FEATURES if values[name] is None]
            raise InvalidInput(
                f"missing measurement(s) {', '.join(missing)}: give all four of "
                f"{', '.join(FEATURES)}, or a CSV file in 'data'",
                argument=missing,
            )
        else:
            raise InvalidInput(
                f"no input: give the four measurements ({', '.join(FEATURES)}) "
                "or a CSV file in 'data'"
            )
        return {"status": "OK", "predictions": self.classify(rows)}

    def classify(self, rows: Sequence[Sequence[float]]) -> list[dict[str, Any]]:
        """Return one prediction dict per row of features."""
        if self._model is None:
            self.warm()
        assert self._model is not None
        probabilities = self._model.predict_proba(rows)
        predictions = []
        for row in probabilities:
            by_class = {
                self._classes[int(cls)]: float(p)
                for cls, p in zip(self._model.classes_, row, strict=True)
            }
            label = max(by_class, key=by_class.__getitem__)
            predictions.append(
                {
                    "label": label,
                    "probability": by_class[label],
                    "probabilities": by_class,
                }
            )
        return predictions

    # -- train -----------------------------------------------------------------

    def get_train_args(self) -> Mapping[str, fields.Field]:
        """Return the random-forest hyper-parameters and the split settings."""
        return {
            "n_estimators": fields.Int(
                load_default=50,
                validate=validate.Range(min=1, max=500),
                metadata={"description": "Number of trees in the forest."},
            ),
            "max_depth": fields.Int(
                required=False,
                load_default=None,
                validate=validate.Range(min=1, max=100),
                metadata={"description": "Maximum tree depth (unlimited if unset)."},
            ),
            "test_size": fields.Float(
                load_default=0.25,
                validate=validate.Range(min=0.05, max=0.9),
                metadata={"description": "Fraction of the data held out for testing."},
            ),
            "random_state": fields.Int(
                load_default=0,
                # scikit-learn takes a seed from 0 to 2**32 - 1.
                validate=validate.Range(min=0, max=2**32 - 1),
                metadata={"description": "Seed of the split and of the forest."},
            ),
        }

    def train(
        self,
        *,
        n_estimators: int = 50,
        max_depth: int | None = None,
        test_size: float = 0.25,
        random_state: int = 0,
    ) -> dict[str, Any]:
        """Fit a forest on a stratified split of iris; return its test metrics.

        Trees are added in about ten steps (``warm_start``), each reported as
        progress. The serving model is not replaced.
        """
        from sklearn.datasets import load_iris
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.metrics import accuracy_score, f1_score
        from sklearn.model_selection import train_test_split

        report_progress(0.0, "loading the iris data set")
        iris = load_iris()
        x_train, x_test, y_train, y_test = train_test_split(
            iris.data,
            iris.target,
            test_size=test_size,
            random_state=random_state,
            stratify=iris.target,
        )
        report_progress(0.05, f"split: {len(x_train)} train, {len(x_test)} test")

        model = RandomForestClassifier(
            n_estimators=0,
            max_depth=max_depth,
            random_state=random_state,
            warm_start=True,
        )
        step = max(1, math.ceil(n_estimators / 10))
        trees = 0
        while trees < n_estimators:
            trees = min(trees + step, n_estimators)
            model.set_params(n_estimators=trees)
            model.fit(x_train, y_train)
            report_progress(0.05 + 0.9 * trees / n_estimators, f"{trees}/{n_estimators} trees")

        predicted = model.predict(x_test)
        metrics = {
            "accuracy": float(accuracy_score(y_test, predicted)),
            "f1_macro": float(f1_score(y_test, predicted, average="macro")),
            "n_train": len(x_train),
            "n_test": len(x_test),
            "params": {
                "n_estimators": n_estimators,
                "max_depth": max_depth,
                "test_size": test_size,
                "random_state": random_state,
            },
        }
        out = artifact_dir()
        if out is not None:
            import joblib

            # Becomes a new version of the model, which load() can serve.
            joblib.dump(model, Path(out) / "iris-forest.joblib")
        report_progress(1.0, f"done: accuracy {metrics['accuracy']:.3f}")
        return metrics

    # -- versions --------------------------------------------------------------

    def load(self, path: str) -> IrisModel:
        """Load a trained (or uploaded) forest; the result predicts like this model."""
        import joblib
        from sklearn.datasets import load_iris
        from sklearn.ensemble import RandomForestClassifier

        forest = joblib.load(path)
        if not isinstance(forest, RandomForestClassifier):
            raise TypeError(f"expected a RandomForestClassifier, got {type(forest).__name__}")
        predictor = IrisModel()
        predictor._model = forest
        predictor._classes = [str(name) for name in load_iris().target_names]
        return predictor
