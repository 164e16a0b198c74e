"""The screen's learned part: a logistic model over the rules' score and the signals.

The rules (`rules.py`) know the phrasings attacks used; the signals (`signals.py`) know what an
attack has to do whatever its words. Neither alone decides well: an order to "the assistant"
is an attack in a web page and a duty in a job advert for an executive assistant. A logistic
regression weighs them together, with the trust level the text arrives at, and turns them into
the probability that the text instructs the assistant that will recall it.

Its weights are built by `benchmarks/poisoning_train.py` (fixed seeds, scikit-learn) from the
tune half of the labelled set, the training-only cases and benign turns of LongMemEval, and
checked in as `data/screen-model.json` (a few tens of KB); the file is checked against
`MODEL_SHA256` before it is read. The same script chooses the per-trust thresholds
(`poison.THRESHOLDS`) on cross-validated scores of that data (`benchmarks/poisoning.md`).
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

from engramdb.errors import ModelError
from engramdb.guard.signals import signal_names
from engramdb.models.verify import verified_bytes

__all__ = [
    "MODEL_SHA256",
    "MODEL_TRUSTS",
    "ScreenModel",
    "feature_names",
    "feature_values",
    "load_model",
    "signal_offset",
]

#: sha256 of `data/screen-model.json`, written by `benchmarks/poisoning_train.py`
MODEL_SHA256: Final = "4c8007d7830aee11484a6afa06a0342b0290b7c1d40b59ac9aa01b3d3665c8fe"
#: the trust levels the model has a feature for; "inferred" is read as "assistant"
MODEL_TRUSTS: Final = ("user", "assistant", "tool", "imported")
_AS_TRUST: Final = {"inferred": "assistant"}


#: the rules' score at which the screen quarantined before it had a model (by rules alone)
RULES_ALONE: Final = 0.4
#: inputs that come before the signals
_LEADING: Final = ("rules", "rules alone would quarantine", "hiding tricks")


def feature_names() -> list[str]:
    """The model's inputs, in order: the rules' score, whether it reaches `RULES_ALONE`, the
    hiding tricks, the signals and their pairs (`signals.signal_names`), then one indicator per
    trust level."""
    return [*_LEADING, *signal_names(), *(f"trust: {t}" for t in MODEL_TRUSTS)]


def feature_values(rules: float, tricks: float, signals: list[float], trust: str) -> list[float]:
    """The inputs in `feature_names()` order for one text."""
    seen = _AS_TRUST.get(trust, trust)
    alone = 1.0 if rules >= RULES_ALONE else 0.0
    return [
        rules,
        alone,
        min(tricks, 1.0),
        *signals,
        *(1.0 if seen == t else 0.0 for t in MODEL_TRUSTS),
    ]


def signal_offset() -> int:
    """Where the signals start in `feature_names()`."""
    return len(_LEADING)


@dataclass(frozen=True)
class ScreenModel:
    """Weights and intercept of the screen's logistic model."""

    names: tuple[str, ...]
    weights: tuple[float, ...]
    intercept: float

    def probability(self, values: list[float]) -> float:
        """The probability that a text with these inputs is an attack."""
        z = self.intercept + sum(w * x for w, x in zip(self.weights, values, strict=True))
        return 1.0 / (1.0 + math.exp(-z))

    def contributions(self, values: list[float]) -> list[tuple[float, str]]:
        """The inputs that raised the score, by how much (in log-odds), largest first."""
        raised = [(w * x, n) for w, x, n in zip(self.weights, values, self.names, strict=True)]
        return sorted((c for c in raised if c[0] > 0), key=lambda c: -c[0])


_DATA: Final = Path(str(resources.files("engramdb.guard") / "data" / "screen-model.json"))
_loaded: dict[Path, ScreenModel] = {}
_lock = threading.Lock()


def _parse(raw: dict[str, Any], path: Path) -> ScreenModel:
    names = tuple(raw["features"])
    if list(names) != feature_names():
        raise ModelError(
            f"screen model {path} was built for other features; rebuild it with "
            "benchmarks/poisoning_train.py"
        )
    weights = tuple(float(w) for w in raw["weights"])
    return ScreenModel(names, weights, float(raw["intercept"]))


def load_model(path: Path = _DATA, sha256: str = MODEL_SHA256) -> ScreenModel:
    """The screen's model, read once per process after its checksum is verified.

    Raises:
        ModelError: the file is missing, altered, or made for other features.
    """
    with _lock:
        model = _loaded.get(path)
        if model is None:
            data = verified_bytes(path, sha256, "screen model", "engramdb")
            model = _parse(json.loads(data), path)
            _loaded[path] = model
        return model
