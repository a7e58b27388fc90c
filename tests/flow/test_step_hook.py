"""The after-step hook: projections, Langevin noise sqrt(2 T h kappa) xi, non-finite detection."""

import numpy as np
import pytest

from meanfield.flow.schedule import timescale_vector
from meanfield.flow.step_hook import NonFiniteState, StepHook, nonfinite_fields
from meanfield.model.networks import build_network
from meanfield.model.projections import make_projections

NET = build_network(3, 4, [5, 6], "tanh", bias=True)
LAYOUT = NET.layout


def state(seed=0):
    return np.random.default_rng(seed).standard_normal(LAYOUT.size)


def test_without_projections_or_noise_the_state_is_unchanged():
    y = state()
    before = y.copy()
    StepHook(LAYOUT)(y, 0.1, 0.1)
    np.testing.assert_array_equal(y, before)


def test_projections_are_applied_in_place_in_order():
    specs = {"layer2": "row_mean", "layer1": {"kind": "ball", "radius": 0.5}}
    y, expected = state(1), state(1)
    StepHook(LAYOUT, make_projections(NET, specs))(y, 0.1, 0.1)
    params = LAYOUT.unpack(expected)
    for project in make_projections(NET, specs):
        project(params)
    np.testing.assert_array_equal(y, expected)
    W = LAYOUT.unpack(y)["layer2"]["weight"]
    assert np.ptp(W, axis=1).max() < 1e-12


def test_noise_is_sqrt_2_temperature_h_kappa_times_the_generators_normals():
    temperature, h = 0.3, 0.01
    kappa = timescale_vector(LAYOUT, {"layer1": 0.0, "layer2": 4.0})
    y = state(2)
    before = y.copy()
    StepHook(LAYOUT, temperature=temperature, rng=np.random.default_rng(5))(y, h, h, kappa)
    xi = np.random.default_rng(5).standard_normal(LAYOUT.size)
    np.testing.assert_allclose(y - before, np.sqrt(2 * temperature * h * kappa) * xi, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(y[LAYOUT.field("layer1", "weight").slice],
                                  before[LAYOUT.field("layer1", "weight").slice])     # frozen: no noise
    z = state(2)
    StepHook(LAYOUT, temperature=temperature, rng=np.random.default_rng(5))(z, h, h)      # kappa None: all 1
    np.testing.assert_allclose(z - before, np.sqrt(2 * temperature * h) * xi, rtol=1e-12, atol=1e-15)


def test_noise_keeps_the_state_dtype():
    y = state(3).astype(np.float32)
    StepHook(LAYOUT, temperature=1.0, rng=np.random.default_rng(0))(y, 0.1, 0.1)
    assert y.dtype == np.float32


def test_noise_needs_a_generator():
    with pytest.raises(ValueError, match="random generator"):
        StepHook(LAYOUT, temperature=0.1)


def test_non_finite_state_names_the_fields_and_the_time():
    y = state(4)
    y[LAYOUT.field("layer2", "bias").slice][2] = np.nan
    y[LAYOUT.field("readout", "weight").slice][0] = np.inf
    assert nonfinite_fields(LAYOUT, y) == ["layer2/bias", "readout/weight"]
    with pytest.raises(NonFiniteState) as info:
        StepHook(LAYOUT)(y, 1.25, 0.25)
    assert info.value.fields == ["layer2/bias", "readout/weight"] and info.value.time == 1.25
    assert str(info.value) == "non-finite values in layer2/bias, readout/weight at t = 1.25"
    assert isinstance(info.value, FloatingPointError)
    assert nonfinite_fields(LAYOUT, state(5)) == []
