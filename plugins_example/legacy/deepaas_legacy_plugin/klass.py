"""Class- and instance-style DEEPaaS V2 models.

The entry point ``legacy_class = deepaas_legacy_plugin.klass:LegacyModel``
makes the loader create an object of the class; ``legacy_instance =
deepaas_legacy_plugin.klass:instance`` points at an object directly. The
class does not inherit from any base class: only its methods matter.
It has no ``train``, so no training is offered.
"""

from __future__ import annotations

from typing import Any

import marshmallow
from webargs import fields, validate

from . import PNG_PATH, ZIP_PATH, __version__


class Prediction(marshmallow.Schema):
    """One prediction."""

    label = fields.Str(required=True)
    probability = fields.Float(required=True)


class Response(marshmallow.Schema):
    """The whole predict response."""

    status = fields.Str(description="Model predictions", required=True)
    predictions = fields.List(fields.Nested(Prediction))


class LegacyModel:
    """A DEEPaaS V2 model as a plain class."""

    schema = Response

    def __init__(self, name: str = "legacy_class") -> None:
        """Create the model; ``name`` is reported in the metadata."""
        self.name = name
        self.warmed = False

    def get_metadata(self) -> dict[str, str]:
        """Return metadata from the exposed model."""
        return {
            "name": self.name,
            "author": "deepaas-host contributors",
            "description": "Class-style model written for DEEPaaS V2",
            "license": "Apache-2.0",
            "url": "https://example.org/deepaas-host/plugins/legacy",
            "version": __version__,
        }

    def warm(self) -> None:
        """Warm (initialize, load) the model."""
        self.warmed = True

    def get_predict_args(self) -> dict[str, fields.Field]:
        """Return the arguments that are needed to perform a prediction."""
        return {
            "top_k": fields.Int(
                required=False,
                missing=1,
                description="Number of predictions to return",
                validate=validate.Range(min=1, max=2),
            ),
            "data": fields.Field(
                description="Data file to perform inference on.",
                required=False,
                missing=None,
                type="file",
                location="form",
            ),
            "accept": fields.Str(
                description="Media type(s) that is/are acceptable for the response.",
                missing="application/json",
                validate=validate.OneOf(["application/zip", "image/png", "application/json"]),
            ),
        }

    def predict(self, **kwargs: Any) -> Any:
        """Prediction from incoming keyword arguments."""
        if kwargs["accept"] == "image/png":
            return open(PNG_PATH, "rb")
        if kwargs["accept"] == "application/zip":
            return open(ZIP_PATH, "rb")

        predictions = [
            {"label": "warm" if self.warmed else "cold", "probability": 0.75},
            {"label": self.name, "probability": 0.25},
        ][: kwargs["top_k"]]
        if kwargs.get("data") is not None:
            with open(kwargs["data"].filename, "rb") as f:
                size = len(f.read())
            predictions.append(
                {"label": f"bytes:{size}", "probability": 1.0},
            )
        return {"status": "OK", "predictions": predictions}


instance = LegacyModel(name="legacy_instance")
