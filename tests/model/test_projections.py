import numpy as np
import pytest

from meanfield.model.networks import build_network
from meanfield.model.projections import KINDS, OPTIONS, PROJECTIONS, Ball, RowMean, make_projection, make_projections


def test_row_mean_keeps_the_p_weighted_mean_and_makes_rows_constant():
    rng = np.random.default_rng(0)
    net = build_network(3, 2, (5, 4), "relu", True, {"layer1": rng.dirichlet(np.ones(5))})
    flat = rng.standard_normal(net.layout.size)
    P = net.layout.unpack(flat)
    means = P["layer2"]["weight"] @ net.p
    make_projection(net, "layer2", "row_mean")(P)
    np.testing.assert_allclose(P["layer2"]["weight"], np.repeat(means[:, None], 5, axis=1), rtol=1e-15)


def test_ball_rescales_only_particles_outside_the_radius():
    net = build_network(2, 2, 3, "relu", True)
    flat = np.zeros(net.layout.size)
    P = net.layout.unpack(flat)
    P["layer1"]["weight"][:] = [[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]]
    P["layer1"]["bias"][:] = [0.0, 0.0, 5.0]
    make_projection(net, "layer1", {"kind": "ball", "radius": 2.0})(P)
    np.testing.assert_allclose(P["layer1"]["weight"], [[1.2, 1.6], [0.3, 0.4], [0.0, 0.0]])
    np.testing.assert_allclose(P["layer1"]["bias"], [0.0, 0.0, 2.0])


def test_ball_on_layer2_uses_the_mean_field_norm():
    net = build_network(3, 2, (4, 1), "relu", False)
    flat = np.zeros(net.layout.size)
    P = net.layout.unpack(flat)
    P["layer2"]["weight"][:] = 3.0          # sqrt(sum_i p_i 9) = 3
    make_projection(net, "layer2", {"kind": "ball", "radius": 1.5})(P)
    np.testing.assert_allclose(P["layer2"]["weight"], 1.5)


def test_bad_projections_are_refused():
    net = build_network(2, 2, 3, "relu", True)
    with pytest.raises(ValueError, match="row_mean"):
        make_projection(net, "layer1", "row_mean")
    with pytest.raises(ValueError, match="allowed: row_mean, ball"):
        make_projection(net, "layer1", {"kind": "sphere"})


def test_registry_of_kinds_and_the_configs_projections():
    assert KINDS == ("row_mean", "ball") and OPTIONS == ("radius",)
    assert PROJECTIONS["row_mean"].groups == ("layer2",) and PROJECTIONS["row_mean"].options == {}
    assert PROJECTIONS["ball"].groups is None and PROJECTIONS["ball"].options == {"radius": 1.0}
    net = build_network(3, 2, (5, 4), "relu", True)
    made = make_projections(net, {"layer2": {"kind": "row_mean"}, "readout": "ball"})
    assert [type(p) for p in made] == [RowMean, Ball]
    assert made[1].group == "readout" and made[1].radius == 1.0          # the registry's default
    with pytest.raises(ValueError, match="allowed: row_mean, ball"):
        make_projection(net, "layer1", {"kind": "sphere"})
