"""Growth laws in the dimension and the width bisection."""

import numpy as np
import pytest

from meanfield.analysis.growth import WidthBisection, fit_growth


def test_each_law_recovers_its_own_data_and_fits_the_other_worse(rng):
    d = np.array([4.0, 8, 16, 32, 64])
    noise = np.exp(0.03 * rng.standard_normal(d.size))
    power = 3.0 * d ** 1.5 * noise
    exponential = 2.0 * np.exp(0.09 * d) * noise
    p = fit_growth(d, power, "power")
    assert p.rate == pytest.approx(1.5, abs=0.05) and p.rate_low <= 1.5 <= p.rate_high
    assert p.amplitude == pytest.approx(3.0, rel=0.15)
    assert p.rms_residual < 0.05 < fit_growth(d, power, "exponential").rms_residual
    e = fit_growth(d, exponential, "exponential")
    assert e.rate == pytest.approx(0.09, abs=0.005) and e.rate_low <= 0.09 <= e.rate_high
    assert e.rms_residual < 0.05 < fit_growth(d, exponential, "power").rms_residual
    np.testing.assert_allclose(e.predict(d) * np.exp(e.residuals), exponential, rtol=1e-12)


def test_growth_fits_refuse_what_they_cannot_fit():
    with pytest.raises(ValueError, match="^unknown growth law 'linear'; allowed: power, exponential$"):
        fit_growth([1, 2], [1, 2], "linear")
    with pytest.raises(ValueError, match="^a growth fit needs sizes at two or more dimensions$"):
        fit_growth([4, 4], [1, 2], "power")
    two = fit_growth([4, 8], [10, 20], "power")
    assert two.rate == pytest.approx(1.0) and np.isnan(two.rate_low)


@pytest.mark.parametrize("threshold", [1, 3, 16, 24, 64, 128, 129, 1000])
def test_bisection_finds_the_smallest_width_that_reaches(threshold):
    ladder = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128]
    search = WidthBisection(ladder)
    probes = []
    while (width := search.next_width()) is not None:
        probes.append(width)
        search.record(width, width >= threshold)
    expected = min((w for w in ladder if w >= threshold), default=None)
    assert search.width == expected
    assert len(probes) == len(set(probes)) <= 6                   # log2(14) + 2
