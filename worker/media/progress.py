"""One progress figure for a whole assembly, from the fractions of its weighted stages."""

from __future__ import annotations

from collections.abc import Callable, Mapping

ProgressCallback = Callable[[float], None]


class WeightedProgress:
    """Combines stage fractions, weighted by expected work, into a 0..1 that never goes down.

    Stages can run at the same time (parallel clip encodes); each reports its own fraction and
    the sum is re-emitted. Weights are relative, e.g. seconds of video a stage encodes.
    """

    def __init__(self, weights: Mapping[str, float], callback: ProgressCallback | None) -> None:
        total = sum(weights.values()) or 1.0
        self._weights = {name: weight / total for name, weight in weights.items()}
        self._done = dict.fromkeys(weights, 0.0)
        self._callback = callback
        self._last = 0.0

    def stage(self, name: str) -> ProgressCallback:
        """The callback one stage reports to; its fraction is clamped to 0..1 and kept monotonic."""

        def update(fraction: float) -> None:
            self._done[name] = max(self._done[name], min(1.0, fraction))
            self._emit()

        return update

    def finish(self, name: str) -> None:
        """Mark a stage complete (FFmpeg may end without a final progress line)."""
        self.stage(name)(1.0)

    def _emit(self) -> None:
        value = min(1.0, sum(self._weights[n] * done for n, done in self._done.items()))
        if value > self._last and self._callback is not None:
            self._last = value
            self._callback(value)
