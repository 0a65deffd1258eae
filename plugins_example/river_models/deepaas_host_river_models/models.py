"""One online model per flavor, each a river pipeline handed to the host."""

from __future__ import annotations

from typing import Any

from river import cluster, feature_extraction, linear_model, optim, preprocessing, tree

from deepaas_host.model.online import OnlineModel

__all__ = ["ImageSegments", "Phishing", "RunningMean", "TextClusters", "TrumpApproval"]


class TrumpApproval(OnlineModel):
    flavor = "regression"
    description = "Approval rating from poll aggregates (river's TrumpApproval stream)"
    example = {
        "ordinal_date": 736389,
        "gallup": 43.84,
        "ipsos": 46.2,
        "morning_consult": 48.32,
        "rasmussen": 44.1,
        "you_gov": 43.64,
    }

    def build(self) -> Any:
        return preprocessing.StandardScaler() | linear_model.LinearRegression(
            optimizer=optim.SGD(0.01)
        )


class Phishing(OnlineModel):
    flavor = "binary"
    description = "Is a web page phishing? (river's Phishing stream)"
    example = {
        "empty_server_form_handler": 0.0,
        "popup_window": 0.0,
        "https": 0.0,
        "request_from_other_domain": 0.0,
        "anchor_from_other_domain": 0.0,
        "is_popular": 0.5,
        "long_url": 1.0,
        "age_of_domain": 1,
        "ip_in_url": 1,
    }

    def build(self) -> Any:
        return preprocessing.StandardScaler() | linear_model.LogisticRegression()


class ImageSegments(OnlineModel):
    flavor = "multiclass"
    description = "Which of 7 surfaces an image region shows (river's ImageSegments stream)"

    def build(self) -> Any:
        return preprocessing.StandardScaler() | tree.HoeffdingTreeClassifier(grace_period=50)


class TextClusters(OnlineModel):
    flavor = "clustering"
    description = "Groups short texts by their words (bag of words, TF-IDF, k-means)"
    example = None

    def build(self) -> Any:
        return (
            feature_extraction.TFIDF(lowercase=True)
            | preprocessing.Normalizer()
            | cluster.KMeans(n_clusters=3, halflife=0.5, sigma=0.1, seed=42)
        )


class Mean:
    """A model river knows nothing about: predicts the mean of what it has seen."""

    def __init__(self) -> None:
        self.n = 0
        self.mean = 0.0

    def learn_one(self, x: dict[str, Any], y: float) -> None:
        self.n += 1
        self.mean += (float(y) - self.mean) / self.n

    def predict_one(self, x: dict[str, Any]) -> float:
        return self.mean


class RunningMean(OnlineModel):
    flavor = "custom"
    description = "A hand-written model: the running mean of the ground truth"

    def build(self) -> Any:
        return Mean()

    def metrics(self) -> list[Any]:
        from river import metrics

        return [metrics.MAE]
