"""The online-learning contract: hand the host a river estimator, get a service.

A plugin registers an :class:`OnlineModel` (class or instance) as an entry point
in the usual namespace. The host then serves named instances of it under
``/v2/online/{name}/``: predict, learn, delayed labels, live metrics, stats,
event streams and bulk learning, with every acknowledged event durable::

    from river import linear_model, preprocessing
    from deepaas_host.model.online import OnlineModel

    class Approval(OnlineModel):
        flavor = "regression"
        description = "Presidential approval from poll aggregates"

        def build(self):
            return preprocessing.StandardScaler() | linear_model.LinearRegression()

Register it in the package's ``setup.cfg``::

    [options.entry_points]
    deepaas_host.model.v2 =
        approval = approval_plugin:Approval

The flavor decides how the host predicts, which ground truth it accepts and which
metrics it keeps: ``regression``, ``binary``, ``multiclass``, ``clustering``,
``anomaly`` or ``custom`` (any object with ``learn_one`` and ``predict_one``).
It is checked against river's own base classes and tags when an instance is
created. ``metrics()`` may replace the flavor's default metrics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

__all__ = ["FLAVORS", "OnlineModel"]

#: Every flavor the host knows.
FLAVORS = ("regression", "binary", "multiclass", "clustering", "anomaly", "custom")


class OnlineModel:
    """Base class of online-learning plugins; override :meth:`build`."""

    #: One of :data:`FLAVORS`.
    flavor: ClassVar[str] = "custom"
    #: One line shown in listings and the API document.
    description: ClassVar[str] = ""
    #: Example features, shown in the API document's request examples.
    example: ClassVar[Mapping[str, Any] | None] = None

    def build(self) -> Any:
        """A fresh, untrained estimator or pipeline (called once per new instance)."""
        raise NotImplementedError(f"{type(self).__name__} must implement build()")

    def metrics(self) -> Sequence[Any] | None:
        """River metrics (classes or instances) to keep instead of the flavor's defaults."""
        return None

    def get_metadata(self) -> dict[str, Any]:
        return {"description": self.description, "flavor": self.flavor}
