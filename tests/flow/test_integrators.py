"""Integrator orders by step halving, adaptive error control, exact landing on times."""

import numpy as np
import pytest

from meanfield.flow.integrators import (FIXED_STEP, INTEGRATORS, NAMES, DormandPrince, FixedStep, StepSizeUnderflow,
                                       make_integrator)
from meanfield.flow.schedule import step_count
from tests.helpers import small_flow

T = 1.0


@pytest.fixture(scope="module")
def problem():
    flow, y0 = small_flow(layers=2, activation="tanh", seed=11)
    F = lambda y: flow.velocity(y)[0]
    exact = DormandPrince(rtol=1e-13, atol=1e-14).advance(F, y0, 0.0, T)
    return F, y0, exact


@pytest.mark.parametrize("name,dts", [
    ("euler", (0.02, 0.01, 0.005)),
    ("heun", (0.05, 0.025, 0.0125)),
    ("rk4", (0.2, 0.1, 0.05)),
])
def test_order_by_step_halving(problem, name, dts):
    F, y0, exact = problem
    order = INTEGRATORS[name].order
    errors = [np.abs(FixedStep(name, dt).advance(F, y0, 0.0, T) - exact).max() for dt in dts]
    slopes = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(np.abs(slopes - order) < 0.15), slopes


def test_adaptive_meets_its_tolerance_and_converges_at_fifth_order(problem):
    F, y0, exact = problem
    errors = []
    for rtol in (1e-5, 1e-7, 1e-9):
        integrator = DormandPrince(rtol=rtol, atol=rtol * 1e-2)
        y = integrator.advance(F, y0, 0.0, T)
        error = np.abs(y - exact).max()
        assert error < 10 * rtol * np.abs(exact).max()
        errors.append((error, integrator.steps))
    # tighter tolerances really take more, smaller steps and reduce the error
    assert errors[0][1] < errors[1][1] < errors[2][1]
    assert errors[0][0] > errors[1][0] > errors[2][0]


def test_fixed_steps_land_exactly_on_the_end_time():
    seen = []
    FixedStep("euler", 0.3).advance(lambda y: np.ones_like(y), np.zeros(2), 0.0, 1.0,
                                    lambda y, t, h: seen.append((t, h)))
    assert len(seen) == 4 and seen[-1][0] == 1.0
    assert all(h == pytest.approx(0.25) for _, h in seen)
    assert step_count(0.0, 1.0, 0.1) == 10
    assert step_count(0.0, 0.3, 0.1) == 3


def test_adaptive_lands_exactly_and_solves_linear_decay():
    times = []
    y = DormandPrince(rtol=1e-10, atol=1e-12).advance(lambda y: -y, np.ones(3), 0.0, 2.0,
                                                    lambda y, t, h: times.append(t))
    assert times[-1] == 2.0
    np.testing.assert_allclose(y, np.exp(-2.0), rtol=1e-9)


def test_unknown_integrator_and_bad_dt_are_refused():
    with pytest.raises(ValueError, match="allowed: euler, heun, rk4, adaptive"):
        make_integrator("leapfrog", 0.1)
    with pytest.raises(ValueError, match="dt must be > 0"):
        make_integrator("euler", 0.0)


def test_registry_of_tableaus():
    assert NAMES == ("euler", "heun", "rk4", "adaptive") and FIXED_STEP == ("euler", "heun", "rk4")
    assert [INTEGRATORS[name].order for name in NAMES] == [1, 2, 4, 5]
    for name, tableau in INTEGRATORS.items():
        assert len(tableau.b) == len(tableau.A) + 1 and all(len(row) == i + 1 for i, row in enumerate(tableau.A))
        assert sum(tableau.b) == pytest.approx(1, abs=1e-15)
        assert tableau.adaptive == (name not in FIXED_STEP)
        if tableau.adaptive:
            assert sum(tableau.bhat) == pytest.approx(1, abs=1e-15)
        integrator = make_integrator(name, 0.1)
        assert isinstance(integrator, DormandPrince if tableau.adaptive else FixedStep) and integrator.name == name
    with pytest.raises(ValueError, match="allowed: euler, heun, rk4, adaptive"):
        make_integrator("leapfrog", 0.1)
    with pytest.raises(ValueError, match="allowed: euler, heun, rk4"):
        FixedStep("adaptive", 0.1)


def _bounded(limit):
    """after_reject that fails the test after ``limit`` rejected steps (instead of hanging)."""
    seen = []

    def after_reject(t, h):
        seen.append(h)
        assert len(seen) < limit, "the step size does not shrink"
    return after_reject, seen


def test_adaptive_rejects_non_finite_trial_steps_and_shrinks():
    """y' = -y, undefined (NaN) outside |y| < 1.2: the first, too long trial steps leave the
    domain; they are rejected and shrunk until the integration succeeds."""
    F = lambda y: np.where(np.abs(y) < 1.2, -y, np.nan)
    after_reject, seen = _bounded(100)
    integrator = DormandPrince(rtol=1e-9, atol=1e-12, dt=5.0)
    y = integrator.advance(F, np.ones(2), 0.0, 5.0, after_reject=after_reject)
    np.testing.assert_allclose(y, np.exp(-5.0), rtol=1e-7)
    assert integrator.rejected == len(seen) >= 1


def test_adaptive_stops_below_the_minimum_step_with_the_non_finite_trial():
    F = lambda y: np.full_like(y, np.nan)
    after_reject, seen = _bounded(100)
    with pytest.raises(StepSizeUnderflow, match="step size fell to .* at t = 0") as info:
        DormandPrince(rtol=1e-6, atol=1e-9, dt=0.1).advance(F, np.ones(3), 0.0, 1.0, after_reject=after_reject)
    assert not np.isfinite(info.value.trial).any() and 10 < len(seen) < 100
