"""``meanfield compare`` against an infinite first layer: the two-width error split."""

import numpy as np
import pytest

from meanfield.config import ConfigError, parse
from meanfield.radial.networks import RadialThreeLayerNetwork
from meanfield.storage import RunFile
from meanfield.studies.finite_width import check, run_comparison, summary_from_file, summary_lines

SPLIT = """\
seed = 1
[problem]
d = 4
[model]
layers = 3
first_layer = "infinite"
width = 64
[expectation]
n = 256
particle_rule = "{rule}"
[flow]
time = 3.0
dt = 0.05
[finite]
{finite}
[output]
snapshots = {{ count = 4, spacing = "linear" }}
progress = false
plot = {plot}
"""

WIDTHS = "layer1_widths = [16, 64, 256]\nlayer2_widths = [4, 8]\nseeds = 3\nbudget = false"


def split_config(finite=WIDTHS, rule="random", plot="false"):
    return parse(SPLIT.format(finite=finite, rule=rule, plot=plot))


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    path = tmp_path_factory.mktemp("split") / "split.h5"
    summary = run_comparison(split_config(plot="true"), path)
    with RunFile(path) as run:
        network, _ = run.network()
        return summary, run.finite(), run.snapshot_times(), run.states(network.layout), network, path


def test_the_losses_split_into_a_first_and_a_second_layer_term(split):
    summary, f, *_ = split
    assert summary["status"] == "finished"
    assert [list(w) for w in f["widths"]] == [[16, 64], [64, 64], [256, 64], [256, 4], [256, 8]]
    np.testing.assert_array_equal(f["size"], [16, 64, 256, 4, 8])
    np.testing.assert_array_equal(f["split/layer1_sweep"], [True, True, True, False, False])
    R_ref = f["reference/loss"]
    total = R_ref + f["term_layer1"] + f["term_layer2"]
    np.testing.assert_allclose(f["loss"], total, rtol=1e-14, atol=1e-16)
    np.testing.assert_allclose(f["loss_perfect"], R_ref + f["term_layer2"], rtol=1e-14, atol=1e-16)
    # m2 = M2: the perfect network is the reference itself
    assert np.all(f["distance_layer2"][:3] == 0) and np.all(f["term_layer2"][:3] == 0)
    assert np.all(f["distance_layer2"][3:] > 0) and np.all(f["distance_layer1"] > 0)


def test_the_perfect_network_starts_from_the_references_subset(split):
    """R_perfect at t = 0 from the reference's initial particles restricted to the stored
    second-layer indices, evaluated here independently of the comparison."""
    _, f, _, ref_states, ref_net, path = split
    from meanfield.simulation import Simulation

    est = Simulation(split_config()).expectation
    P = ref_net.layout.unpack(ref_states[0])
    for seed in range(3):
        idx = f[f"runs/256x4/seed_{seed}/layer2_indices"]
        sub = RadialThreeLayerNetwork(4, (ref_net.width1, 4), "relu", True)
        flat = sub.layout.pack({"layer1": P["layer1"], "readout": {"weight": P["readout"]["weight"][idx]},
                                "layer2": {"weight": P["layer2"]["weight"][idx], "bias": P["layer2"]["bias"][idx]}})
        np.testing.assert_allclose(f["loss_perfect"][3, seed, 0], est.test_loss(sub, flat), rtol=1e-12)


def test_both_exponents_are_fitted_with_their_models(split):
    summary, f, *_ = split
    # D1 = C1 m1^-alpha1 over m1 = 16 .. 256: a sample mean over the first layer's neurons
    assert f["summary@"]["model"] == "bare" and 0.3 < summary["alpha"] < 0.7, summary["alpha"]
    assert summary["alpha_low"] < 0.5 < summary["alpha_high"]
    fit = f["split@"]
    assert fit["model"] == "subsample" and fit["reference_size"] == 64
    assert summary["layer2_fit"]["alpha"] == pytest.approx(fit["alpha"])
    again = summary_from_file(split[-1])
    assert again["layer2_fit"] == summary["layer2_fit"] and again["alpha"] == summary["alpha"]
    lines = "\n".join(summary_lines(again))
    assert "first layer: alpha1" in lines and "second layer: alpha2" in lines and "M2 = 64" in lines
    assert set(summary["plots"]) == {"alpha", "distance", "split"}
    for row in again["split_final"]:
        assert row["R_m"] == pytest.approx(row["R_ref"] + row["term_layer1"] + row["term_layer2"], rel=1e-12)
    with RunFile(split[-1]) as run:
        info = "\n".join(run.summary_lines())
    assert "alpha1 (first layer) = " in info and "alpha2 (second layer) = " in info


@pytest.mark.parametrize("finite, rule, message", [
    ('coupling = "independent"', "random", "[finite] coupling = 'independent': against [model] first_layer"),
    ("", "sobol", "[expectation] particle_rule = 'sobol': against [model] first_layer = 'infinite'"),
    ('reference = "radial"', "random", "[finite] reference = 'radial': with [model] first_layer = 'infinite'"),
])
def test_what_the_split_cannot_do_is_refused(finite, rule, message):
    with pytest.raises(ValueError) as caught:
        check(split_config(finite, rule))
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize("finite, message", [
    ("widths = [[8, 8]]", "[finite] widths: against [model] first_layer = 'infinite' the widths are layer1_widths"),
    ("layer2_widths = [8, 64]", "[finite] layer2_widths = [8, 64]: must be below the reference's M2 = 64"),
    ("layer1_widths = []", "[finite] layer1_widths = []: must be a non-empty list"),
])
def test_split_widths_are_checked(finite, message):
    with pytest.raises(ConfigError) as caught:
        split_config(finite)
    assert message in str(caught.value)


def test_split_widths_belong_to_an_infinite_first_layer():
    with pytest.raises(ConfigError, match=r"\[finite\] layer1_widths belongs to a reference with \[model\] "
                                          r"first_layer = 'infinite'"):
        parse("[model]\nlayers = 3\n[finite]\nlayer1_widths = [4]")
