"""Module-style DEEPaaS V2 model (entry point ``legacy = deepaas_legacy_plugin.api``).

Written with the idioms of DEEPaaS V2's documentation: webargs fields with
``missing=``/``description=``/``enum=`` keyword arguments, a file argument as
``fields.Field(type="file", location="form")``, an ``accept`` argument, a
response ``schema`` dict, and module-level functions.
"""

from __future__ import annotations

import time
from typing import Any

from webargs import fields, validate

from . import PNG_PATH, ZIP_PATH, __version__

schema = {
    "status": fields.Str(description="Model predictions", required=True),
    "predictions": fields.List(
        fields.Nested(
            {
                "label": fields.Str(required=True),
                "probability": fields.Float(required=True),
            },
        )
    ),
}

_warmed = False


def get_metadata() -> dict[str, str]:
    """Return the model metadata."""
    return {
        "name": "legacy",
        "author": "deepaas-host contributors",
        "description": "Module-style model written for DEEPaaS V2",
        "license": "Apache-2.0",
        "url": "https://example.org/deepaas-host/plugins/legacy",
        "version": __version__,
    }


def warm() -> None:
    """Warm (initialize, load) the model."""
    global _warmed
    _warmed = True


def get_predict_args() -> dict[str, fields.Field]:
    """Return the arguments that are needed to perform a prediction."""
    return {
        "arg1": fields.Str(
            required=False,  # force the user to define the value
            missing="foo",  # default value to use
            enum=["choice1", "choice2"],  # list of choices
            description="Argument one",  # help string
        ),
        "data": fields.Field(
            description="Data file to perform inference on.",
            required=False,
            missing=None,
            type="file",
            location="form",
        ),
        "url": fields.Url(
            description="Url of data to perform inference on.",
            required=False,
            missing=None,
        ),
        "accept": fields.Str(
            description="Media type(s) that is/are acceptable for the response.",
            missing="application/json",
            validate=validate.OneOf(["application/zip", "image/png", "application/json"]),
        ),
    }


def predict(**kwargs: Any) -> Any:
    """Prediction from incoming keyword arguments.

    Returns an open file for ``image/png`` and ``application/zip``, and the
    whole response (matching :data:`schema`) for ``application/json``.
    """
    if kwargs["accept"] == "image/png":
        return open(PNG_PATH, "rb")
    if kwargs["accept"] == "application/zip":
        return open(ZIP_PATH, "rb")

    predictions = [{"label": kwargs["arg1"], "probability": 1.0 if _warmed else 0.5}]
    data = kwargs.get("data")
    if data is not None:
        with open(data.filename, "rb") as f:
            size = len(f.read())
        predictions.append({"label": f"file:{data.original_filename}:{size}", "probability": 1.0})
    if kwargs.get("url"):
        predictions.append({"label": f"url:{kwargs['url']}", "probability": 1.0})
    return {"status": "OK", "predictions": predictions}


def get_train_args() -> dict[str, fields.Field]:
    """Return the arguments that are needed to train the application."""
    return {
        "arg1": fields.Str(
            required=False,
            missing="foo",
            enum=["choice1", "choice2"],
            description="Argument one",
        ),
        "epochs": fields.Int(
            required=False,
            missing=2,
            description="Number of epochs",
            validate=validate.Range(min=1, max=100),
        ),
        "sleep": fields.Float(
            required=False,
            missing=0.1,
            description="Seconds to sleep per epoch",
            validate=validate.Range(min=0, max=10),
        ),
    }


def train(**kwargs: Any) -> dict[str, Any]:
    """Perform a training; returns a dict of results."""
    losses = []
    for epoch in range(kwargs["epochs"]):
        time.sleep(kwargs["sleep"])
        losses.append(1.0 / (epoch + 2))
    return {
        "arg1": kwargs["arg1"],
        "epochs": kwargs["epochs"],
        "losses": losses,
        "final_loss": losses[-1],
    }
