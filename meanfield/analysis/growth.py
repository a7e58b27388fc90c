"""How a needed size grows with the dimension: power law against exponential, and bisection.

For sizes w(d) > 0 measured at dimensions d, two least-squares lines in log w:

    power law     log w = log A + p log d        w = A d^p
    exponential   log w = log A + r d            w = A e^(r d)

each with its t-interval for the rate (p or r), the residuals in log w and their root
mean square, so a reader can see which law the points follow (and whether the range of
d can tell them apart at all).

:class:`WidthBisection` finds the smallest width on a geometric ladder whose runs reach a
loss target, one probe at a time (the probes are run files of a study, planned round
by round).
"""

import dataclasses
import math

import numpy as np
import scipy.stats

LAWS = ("power", "exponential")


@dataclasses.dataclass
class GrowthFit:
    law: str                 # power | exponential
    rate: float              # p of A d^p, or r of A e^(r d)
    rate_low: float
    rate_high: float
    amplitude: float         # A
    residuals: np.ndarray    # log w - fitted log w, per point
    rms_residual: float
    confidence: float

    def predict(self, d):
        d = np.asarray(d, dtype=np.float64)
        return self.amplitude * (d ** self.rate if self.law == "power" else np.exp(self.rate * d))


def fit_growth(dimensions, sizes, law, confidence=0.9):
    """Fit ``law`` (power | exponential) to sizes (> 0) at dimensions; needs 2 points (3 for an interval)."""
    if law not in LAWS:
        raise ValueError(f"unknown growth law {law!r}; allowed: {', '.join(LAWS)}")
    d = np.asarray(dimensions, dtype=np.float64)
    y = np.log(np.asarray(sizes, dtype=np.float64))
    x = np.log(d) if law == "power" else d
    if len(x) < 2 or np.ptp(x) == 0:
        raise ValueError("a growth fit needs sizes at two or more dimensions")
    xc = x - x.mean()
    rate = float(xc @ (y - y.mean()) / (xc @ xc))
    intercept = float(y.mean() - rate * x.mean())
    residuals = y - (intercept + rate * x)
    rms = float(np.sqrt(np.mean(residuals ** 2)))
    low = high = float("nan")
    if len(x) >= 3:
        stderr = math.sqrt(float(residuals @ residuals) / (len(x) - 2) / float(xc @ xc))
        q = scipy.stats.t.ppf(0.5 + 0.5 * confidence, len(x) - 2)
        low, high = rate - q * stderr, rate + q * stderr
    return GrowthFit(law, rate, low, high, math.exp(intercept), residuals, rms, confidence)


class WidthBisection:
    """The smallest width of ``ladder`` (increasing) that reaches a target, by bisection.

    ``reached(width)`` answers are fed back with :meth:`record`; :meth:`next_width` names the
    next width to try, or None when the answer is known: :attr:`width` is then the
    smallest width that reached (None when even the largest did not).  Assumes reaching
    is monotone in the width; the recorded answers are kept so a report can show them.
    """

    def __init__(self, ladder):
        self.ladder = sorted(int(w) for w in ladder)
        if not self.ladder:
            raise ValueError("a width bisection needs at least one width")
        self.answers = {}
        self.low, self.high = -1, len(self.ladder)      # ladder[low] fails, ladder[high] reaches

    def record(self, width, reached):
        index = self.ladder.index(int(width))
        self.answers[int(width)] = bool(reached)
        if reached:
            self.high = min(self.high, index)
        else:
            self.low = max(self.low, index)

    def next_width(self):
        if self.high - self.low <= 1:
            return None
        if self.high == len(self.ladder) and self.low == -1:
            return self.ladder[len(self.ladder) // 2]
        if self.high == len(self.ladder):                # nothing reached yet: try the largest
            return self.ladder[-1]
        return self.ladder[(self.low + self.high) // 2]

    @property
    def width(self):
        if self.next_width() is not None:
            return None
        return self.ladder[self.high] if self.high < len(self.ladder) else None
