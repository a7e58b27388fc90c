"""The schedule: per-group time-scale vectors, phases and their cuts, piece ends, step counts."""

import numpy as np
import pytest

from meanfield.flow.schedule import GROUPS, Schedule, step_count, timescale_vector
from meanfield.model.networks import build_network

NET = build_network(3, 4, [5, 6], "tanh", bias=True)
LAYOUT = NET.layout


def kappa_of(vector, group):
    """The constant value of ``vector`` on ``group`` (1 for None: all ones)."""
    if vector is None:
        return 1.0
    values = np.concatenate([vector[f.slice] for f in LAYOUT.fields if f.group == group])
    assert np.all(values == values[0])
    return float(values[0])


def test_timescale_vector_is_the_group_value_on_every_coordinate():
    kappa = timescale_vector(LAYOUT, {"layer1": 0.0, "readout": 2.5})
    assert kappa.shape == (LAYOUT.size,)
    assert [kappa_of(kappa, g) for g in GROUPS] == [0.0, 1.0, 2.5]
    with pytest.raises(ValueError, match="allowed: layer1, layer2, readout"):
        timescale_vector(LAYOUT, {"layer3": 1.0})


def test_kappa_per_phase_and_cuts():
    phases = [{"until": 1.0, "timescale": {"layer1": 0.0}},
              {"until": 2.5, "timescale": {"layer2": 3.0, "readout": 1.0}}]
    schedule = Schedule(LAYOUT, {"readout": 0.5}, phases)
    assert schedule.cuts == (1.0, 2.5)
    assert len(schedule.kappas) == 3
    # a phase overrides the run's time scales group by group
    expected = [(0.0, 1.0, 0.5), (1.0, 3.0, 1.0), (1.0, 1.0, 0.5)]
    for (t0, t1), values in zip([(0.0, 1.0), (1.0, 2.5), (2.5, 4.0)], expected):
        assert tuple(kappa_of(schedule.kappa(t0, t1), g) for g in GROUPS) == values
    # a piece belongs to the phase of its midpoint; phase k holds on (cuts[k-1], cuts[k]]
    assert schedule.kappa(0.5, 1.0) is schedule.kappas[0]
    assert schedule.kappa(1.0, 1.5) is schedule.kappas[1]
    assert schedule.kappa(2.5, 2.6) is schedule.kappas[2]


def test_all_ones_is_none_and_no_phases_has_no_cuts():
    schedule = Schedule(LAYOUT, {"layer1": 1.0, "layer2": 1.0, "readout": 1.0})
    assert schedule.cuts == () and schedule.kappas == [None]
    assert schedule.kappa(0.0, 10.0) is None
    assert Schedule(LAYOUT).kappa(0.0, 1.0) is None


def test_piece_ends_are_record_times_cuts_and_the_end_inside_the_interval():
    schedule = Schedule(LAYOUT, {}, [{"until": 1.0, "timescale": {}}, {"until": 3.0, "timescale": {}}])
    assert schedule.ends(0.0, 4.0, [0.0, 0.5, 1.0, 2.0]) == [0.5, 1.0, 2.0, 3.0, 4.0]
    assert schedule.ends(1.0, 2.5, [0.5, 2.0, 5.0]) == [2.0, 2.5]
    assert schedule.ends(0.0, 0.5) == [0.5]


def test_step_count_covers_the_piece_with_steps_of_at_most_dt():
    assert step_count(0.0, 1.0, 0.1) == 10
    assert step_count(0.0, 0.3, 0.1) == 3                     # not 4: rounding of 0.3 / 0.1
    assert step_count(0.0, 0.31, 0.1) == 4
    assert step_count(0.0, 1e-12, 0.1) == 1
    for t0, t1, dt in [(0.0, 1.0, 0.3), (0.2, 0.7, 0.01), (1.0, 5.0, 0.7)]:
        n = step_count(t0, t1, dt)
        assert (t1 - t0) / n <= dt * (1 + 1e-9)                # steps of at most dt ...
        assert n == 1 or (t1 - t0) / (n - 1) > dt              # ... and no more of them than needed
