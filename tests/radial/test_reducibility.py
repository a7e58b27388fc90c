"""Which configs reduce to the radial solver, and the solver built from one."""

import pytest

from meanfield.flow.estimators import ESTIMATORS
from meanfield.problem import problem_from_config
from meanfield.radial.marginals import reduced_from_config
from meanfield.radial.reducibility import check_config
from tests.radial.common import base_config


def test_check_config_and_from_config():
    cfg = base_config(**{"model.width": 16})
    cfg["expectation"].update({"particles": 64, "particle_rule": "sobol"})
    assert check_config(cfg) is None
    network, flat = reduced_from_config(cfg)
    est = ESTIMATORS["radial"](cfg, problem_from_config(cfg), network)
    assert network.width == 64 and est.method == "radial" and network.d == 10
    bad = base_config(**{"flow.temperature": 0.1})
    assert "temperature" in check_config(bad)
    bad = base_config()
    bad["problem"]["target"] = {"kind": "single_index", "link": "relu", "scale": 1.0, "seed": None,
                                "direction": None, "amplitude": 1.0}
    assert "rotation" in check_config(bad)
    bad = base_config()
    bad["model"]["init"] = {"layer1": {"weight": {"law": "uniform", "low": -1.0, "high": 1.0}}}
    assert "rotation invariant" in check_config(bad)
    with pytest.raises(ValueError, match="method = 'radial'"):
        reduced_from_config(bad)
