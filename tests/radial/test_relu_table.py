"""The tail table P(t > tau) of relu features."""

import math

import numpy as np
import pytest

from meanfield.radial.cosine import cosine_constant
from meanfield.radial.relu_table import upper_tail, upper_tail_exact
from tests.radial.common import t_expectation


@pytest.mark.parametrize("d", (2, 3, 4, 7, 10, 50, 1000))
def test_tail_table_against_betainc_and_quadrature(d):
    """P(t > tau) from the table: betainc to 5e-15, the phi formula by quadrature."""
    rng = np.random.default_rng(d)
    tau = np.concatenate([rng.uniform(-1, 1, 200), rng.normal(0, 1 / math.sqrt(d), 200).clip(-1, 1), [-1, 0, 1]])
    assert np.abs(upper_tail(d, tau) - upper_tail_exact(d, tau)).max() < 5e-15
    assert upper_tail(d, np.array([0.0]))[0] == 0.5
    # E[t 1{t > tau}] = c_d (1 - tau^2)^((d-1)/2) / (d - 1)
    for x in tau[:5]:
        phi = cosine_constant(d) * (1 - x * x) ** ((d - 1) / 2) / (d - 1)
        assert phi == pytest.approx(t_expectation(d, lambda t: t * (t > x), x), abs=2e-14)
