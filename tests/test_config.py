"""Validation of run configurations (the README's Configuration section): bad input is refused with a ConfigError
whose one-line message names the key and the allowed values; defaults are filled in."""

import pytest

from meanfield.model import activations
from meanfield.flow import integrators
from meanfield.config import ConfigError, default_text, load, parse


def refused(text):
    """The ConfigError message for ``text`` (fails the test if it is accepted)."""
    with pytest.raises(ConfigError) as info:
        parse(text)
    message = str(info.value)
    assert message, "empty error message"
    assert "\n" not in message, f"message is not one line: {message!r}"
    return message


# --------------------------------------------------------------------------- unknown keys

@pytest.mark.parametrize("text, where", [
    ("foo = 1", "top level"),
    ("[problem]\nfoo = 1", "[problem]"),
    ("[model]\nfoo = 1", "[model]"),
    ("[expectation]\nfoo = 1", "[expectation]"),
    ("[flow]\nfoo = 1", "[flow]"),
    ("[finite]\nfoo = 1", "[finite]"),
    ("[output]\nfoo = 1", "[output]"),
    ('[problem]\ninput = {law = "gaussian", foo = 1}', "[problem.input]"),
    ('[problem]\ntarget = {kind = "relu_ball", foo = 1}', "[problem.target]"),
    ('[problem]\ntarget = {kind = "teacher", foo = 1}', "[problem.target]"),
    ("[flow]\ntimescale = {foo = 1}", "[flow.timescale]"),
    ("[flow]\ntime = 1\nphases = [{until = 0.5, foo = 1}]", "phases[0]"),
    ("[output]\nsnapshots = {count = 3, foo = 1}", "[output.snapshots]"),
    ("[output]\nmetrics = {count = 3, foo = 1}", "[output.metrics]"),
    ('[model]\ninit = {foo = {law = "normal"}}', "[model.init]"),
])
def test_unknown_key_is_refused(text, where):
    message = refused(text)
    assert "'foo'" in message
    assert where in message
    assert "allowed" in message


def test_unknown_top_level_key_lists_the_allowed_tables():
    message = refused("modle = 1")
    assert "'modle'" in message
    for key in ("problem", "model", "expectation", "flow", "finite", "output", "seed"):
        assert key in message


def test_unknown_model_key_lists_the_allowed_keys():
    message = refused("[model]\nwidht = 8")
    assert "'widht'" in message
    for key in ("layers", "activation", "width", "bias", "init"):
        assert key in message


def test_layer2_key_is_unknown_for_a_two_layer_projection():
    message = refused('[flow]\nprojections = {layer2 = "row_mean"}')
    assert "'layer2'" in message and "layer1" in message and "readout" in message


# --------------------------------------------------------------------------- wrong types

@pytest.mark.parametrize("text, key", [
    ('[problem]\nd = "3"', "d"),
    ("[problem]\nd = 3.5", "d"),
    ("[problem]\nd = true", "d"),
    ("[model]\nwidth = 8.0", "width"),
    ('[model]\nwidth = "8"', "width"),
    ("[expectation]\nn = true", "n"),
    ("[expectation]\nn = 64.0", "n"),
    ("[expectation]\neval_n = false", "eval_n"),
    ('[flow]\ndt = "0.1"', "dt"),
    ("[flow]\ntime = true", "time"),
    ('[model]\nbias = "yes"', "bias"),
    ("[model]\nbias = 1", "bias"),
    ('seed = "0"', "seed"),
    ("[output]\npath = 5", "path"),
    ('[output]\nprogress = "no"', "progress"),
    ('[flow]\ntimescale = {layer1 = "fast"}', "layer1"),
    ("[finite]\nwidths = [8, \"a\"]", "widths"),
])
def test_wrong_type_is_refused(text, key):
    message = refused(text)
    assert key in message


@pytest.mark.parametrize("text, key", [
    ("problem = 5", "problem"),
    ("flow = 5", "flow"),
    ("[[model]]\nwidth = 3", "model"),
    ("[problem]\ninput = 5", "input"),
    ('[problem]\ntarget = "teacher"', "target"),
    ("[flow]\ntimescale = 5", "timescale"),
    ("[flow]\nphases = {until = 1}", "phases"),
    ("[flow]\nphases = [1]", "phases"),
    ("[model]\ninit = {layer1 = 5}", "layer1"),
])
def test_non_table_where_a_table_belongs_is_refused(text, key):
    message = refused(text)
    assert key in message
    assert "table" in message


@pytest.mark.parametrize("text", ["[problem]\ntarget = 5", "[problem]\ntarget = [{kind = \"teacher\"}]"])
def test_non_table_target_is_a_config_error(text):
    message = refused(text)
    assert "target" in message


# --------------------------------------------------------------------------- impossible values

@pytest.mark.parametrize("text, key, allowed", [
    ("[problem]\nd = 0", "d", ">= 1"),
    ("[problem]\nd = -2", "d", ">= 1"),
    ("[model]\nwidth = -4", "width", ">= 1"),
    ("[model]\nwidth = 0", "width", ">= 1"),
    ("[flow]\ndt = 0", "dt", "> 0"),
    ("[flow]\ndt = -0.1", "dt", "> 0"),
    ("[flow]\ndt = inf", "dt", "> 0"),
    ("[flow]\ndt = nan", "dt", "> 0"),
    ("[flow]\ntime = 0", "time", "> 0"),
    ("[flow]\ntime = -1.0", "time", "> 0"),
    ("[flow]\nweight_decay = -1e-3", "weight_decay", ">= 0"),
    ("[flow]\ntemperature = -1", "temperature", ">= 0"),
    ("[flow]\ntimescale = {layer1 = -1}", "layer1", ">= 0"),
    ("[problem]\nnoise = -0.5", "noise", ">= 0"),
    ("[expectation]\nn = 0", "n", ">= 1"),
    ("seed = -1", "seed", ">= 0"),
    ("[output]\nsnapshots = {count = 1}", "count", ">= 2"),
])
def test_impossible_value_is_refused(text, key, allowed):
    message = refused(text)
    assert key in message
    assert allowed in message


@pytest.mark.parametrize("text, key, allowed", [
    ('[model]\nactivation = "gelu"', "activation", activations.NAMES),
    ('[flow]\nintegrator = "leapfrog"', "integrator", integrators.NAMES),
    ('[problem]\ninput = {law = "cauchy"}', "law", ("gaussian", "sphere", "ball", "radial")),
    ('[problem]\ntarget = {kind = "xor"}', "kind", ("relu_ball", "radial", "single_index", "teacher")),
    ("[model]\nlayers = 4", "layers", ("2", "3")),
    ('[expectation]\nsampler = "halton"', "sampler", ("mc", "sobol")),
    ('[model]\nparticle_weights = "dirichlet"', "particle_weights", ("uniform", "random")),
    ('[problem]\ntarget = {kind = "teacher", activation = "gelu"}', "activation", activations.NAMES),
    ('[model]\ninit = {layer1 = {law = "cauchy"}}', "law", ("normal", "uniform", "sphere")),
    ('[flow]\nprojections = {layer1 = "sphere"}', "kind", ("row_mean", "ball")),
    ('[output]\nsnapshots = {count = 3, spacing = "log"}', "spacing", ("linear", "geometric")),
])
def test_unknown_choice_names_the_key_and_the_allowed_values(text, key, allowed):
    message = refused(text)
    assert key in message
    for name in allowed:
        assert name in message


def test_target_without_kind_is_refused():
    message = refused("[problem]\ntarget = {radius = 1.0}")
    assert "kind" in message and "relu_ball" in message


@pytest.mark.parametrize("width", ["8", "[8]", "[8, 8, 8]", "[8, 0]", "[8, 2.5]", "[8, true]"])
def test_three_layer_width_must_be_a_pair(width):
    message = refused(f"[model]\nlayers = 3\nwidth = {width}")
    assert "width" in message
    assert "[M1, M2]" in message


def test_three_layer_width_pair_is_accepted():
    config = parse("[model]\nlayers = 3\nwidth = [8, 16]")
    assert config["model"]["width"] == [8, 16]


def test_adaptive_integrator_refuses_a_temperature():
    message = refused('[flow]\nintegrator = "adaptive"\ntemperature = 0.1')
    assert "temperature" in message
    assert "adaptive" in message
    for name in ("euler", "heun", "rk4"):
        assert name in message


def test_adaptive_integrator_without_temperature_is_accepted():
    assert parse('[flow]\nintegrator = "adaptive"')["flow"]["integrator"] == "adaptive"


# closed_form needs Gaussian inputs, two layers, no bias, relu/erf and a teacher or
# single-index target.
CLOSED_FORM_OK = {
    "problem": 'd = 4\ntarget = { kind = "teacher", width = 3, bias = false }',
    "model": "layers = 2\nbias = false\nactivation = \"relu\"\nwidth = 8",
}


def closed_form_text(problem=None, model=None):
    problem = problem or CLOSED_FORM_OK["problem"]
    if "input" not in problem:
        problem += '\ninput = { law = "gaussian" }'
    return (f"[problem]\n{problem}\n"
            f"[model]\n{model or CLOSED_FORM_OK['model']}\n"
            '[expectation]\nmethod = "closed_form"\n')


def test_closed_form_compatible_problem_is_accepted():
    assert parse(closed_form_text())["expectation"]["method"] == "closed_form"
    single = 'd = 4\ntarget = { kind = "single_index", link = "erf" }'
    model = 'bias = false\nactivation = "erf"\nwidth = 8'
    assert parse(closed_form_text(single, model))["expectation"]["method"] == "closed_form"


@pytest.mark.parametrize("problem, model, key", [
    (None, 'bias = true\nwidth = 8', "bias"),
    ('d = 4\ntarget = { kind = "teacher", layers = 2, width = 3, bias = false }',
     'layers = 3\nbias = false\nwidth = [4, 4]', "two-layer"),
    (None, 'bias = false\nactivation = "tanh"\nwidth = 8', "activation"),
    ('d = 4\ninput = { law = "sphere" }\ntarget = { kind = "teacher", bias = false }', None, "law"),
    ('d = 4\ninput = { law = "ball" }\ntarget = { kind = "teacher", bias = false }', None, "gaussian"),
    ('d = 4\ntarget = { kind = "relu_ball" }', None, "target"),
    ('d = 4\ntarget = { kind = "teacher", bias = true }', None, "teacher"),
    ('d = 4\ntarget = { kind = "teacher", bias = false, activation = "erf" }', None, "teacher"),
    ('d = 4\ntarget = { kind = "single_index", link = "tanh" }', None, "single_index"),
])
def test_closed_form_with_an_incompatible_problem_is_refused(problem, model, key):
    message = refused(closed_form_text(problem, model))
    assert "closed_form" in message
    assert key in message
    assert "samples" in message  # what to use instead


@pytest.mark.parametrize("phases, index", [
    ("[{until = 0.5}, {until = 0.3}]", 1),
    ("[{until = 0.5}, {until = 0.5}]", 1),
    ("[{until = 2.0}]", 0),
    ("[{until = 0.0}]", 0),
    ("[{until = -0.5}]", 0),
    ("[{timescale = {layer1 = 0}}]", 0),
])
def test_phases_must_increase_within_the_run(phases, index):
    message = refused(f"[flow]\ntime = 1.0\nphases = {phases}")
    assert f"phases[{index}]" in message
    assert "until" in message


def test_valid_phases_are_accepted_and_inherit_the_timescale():
    config = parse("[flow]\ntime = 1.0\ntimescale = {readout = 2.0}\n"
                   "phases = [{until = 0.25, timescale = {layer1 = 0}}, {until = 1.0}]")
    first, second = config["flow"]["phases"]
    assert first["until"] == 0.25 and second["until"] == 1.0
    assert first["timescale"]["layer1"] == 0.0
    assert first["timescale"]["readout"] == 2.0
    assert second["timescale"]["layer1"] == 1.0


@pytest.mark.parametrize("layers, width, group", [
    (2, "8", "layer1"),
    (2, "8", "readout"),
    (3, "[4, 4]", "layer1"),
    (3, "[4, 4]", "readout"),
])
def test_row_mean_projection_only_on_layer2(layers, width, group):
    message = refused(f'[model]\nlayers = {layers}\nwidth = {width}\n[flow]\nprojections = {{{group} = "row_mean"}}')
    assert group in message
    assert "row_mean" in message
    assert "layer2" in message


def test_row_mean_projection_on_layer2_is_accepted():
    config = parse('[model]\nlayers = 3\nwidth = [4, 4]\n[flow]\nprojections = {layer2 = "row_mean"}')
    assert config["flow"]["projections"] == {"layer2": {"kind": "row_mean"}}


@pytest.mark.parametrize("n, eval_n, key", [(100, 128, "n"), (128, 100, "eval_n"), (3, 4, "n")])
def test_sobol_needs_powers_of_two(n, eval_n, key):
    message = refused(f'[expectation]\nsampler = "sobol"\nn = {n}\neval_n = {eval_n}')
    assert f"{key} = " in message
    assert "power of two" in message


def test_sobol_with_powers_of_two_is_accepted():
    config = parse('[expectation]\nsampler = "sobol"\nn = 64\neval_n = 128')
    assert config["expectation"]["n"] == 64 and config["expectation"]["eval_n"] == 128


@pytest.mark.parametrize("text", ["[flow\ntime = 1", "seed = = 1", "[model]\nwidth = 8\nwidth = 9", "x = [1,"])
def test_malformed_toml_is_refused(text):
    message = refused(text)
    assert "TOML" in message


# --------------------------------------------------------------------------- accepted input

def test_empty_config_gets_every_default():
    """The defaults the README documents, value by value (test_readme checks the whole block)."""
    config = parse("")
    assert config["seed"] == 0
    assert config["problem"] == {"d": 10, "noise": 0.0,
                                 "input": {"law": "radial", "radius": {"law": "uniform", "rmin": 0.0, "rmax": 2.0}},
                                 "target": {"kind": "relu_ball", "radius": 1.0, "amplitude": 1.0}}
    assert config["model"] == {"layers": 2, "first_layer": "particles", "activation": "relu", "width": 256, "bias": True,
                               "particle_weights": "uniform", "dtype": "float64", "init": {}}
    assert config["expectation"] == {"method": "samples", "n": 4096, "sampler": "mc", "eval_n": 4096, "seed": None}
    assert config["flow"] == {"time": 10.0, "integrator": "heun", "dt": 0.01, "rtol": 1e-6, "atol": 1e-9,
                              "weight_decay": 0.0, "temperature": 0.0,
                              "timescale": {"layer1": 1.0, "readout": 1.0},      # two layers: no layer2 group
                              "phases": [], "projections": {}}
    assert config["output"] == {"path": "meanfield-run.h5", "snapshots": {"count": 11, "spacing": "linear"},
                                "metrics": {"count": 101, "spacing": "geometric"}, "checkpoint_seconds": 600.0,
                                "wall_limit_seconds": None, "progress": True, "plot": True}
    assert config["finite"]["widths"] == [] and config["finite"]["coupling"] == "subsample"


def test_defaults_are_filled_next_to_given_keys():
    config = parse("[model]\nwidth = 12\n[flow]\ndt = 0.2")
    assert config["model"]["width"] == 12 and config["flow"]["dt"] == 0.2
    default = parse("")
    assert config["model"]["activation"] == default["model"]["activation"]
    assert config["flow"]["time"] == default["flow"]["time"]
    assert config["problem"] == default["problem"]


def test_the_builtin_default_parses():
    text = default_text()
    config = parse(text)
    assert config["_text"] == text
    assert config["model"]["layers"] == 2
    assert config["expectation"]["sampler"] == "sobol"


def test_teacher_target_example_is_accepted():
    config = parse('[problem]\nd = 5\ntarget = { kind = "teacher", width = 3, activation = "relu", bias = false }')
    target = config["problem"]["target"]
    assert target["kind"] == "teacher"
    assert target["width"] == 3 and target["activation"] == "relu" and target["bias"] is False
    assert target["layers"] == 2


def test_parse_keeps_the_text():
    text = "seed = 7\n[model]\nwidth = 8\n"
    config = parse(text)
    assert config["_text"] == text and config["seed"] == 7


def test_load_reads_a_file(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("seed = 5\n[problem]\nd = 2\n")
    config = load(path)
    assert config["seed"] == 5 and config["problem"]["d"] == 2


def test_load_of_a_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load(tmp_path / "missing.toml")


def test_load_of_an_invalid_file_is_a_config_error(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[problem]\nd = 0\n")
    with pytest.raises(ConfigError, match=r"\[problem\] d"):
        load(path)


def test_layer2_timescale_is_unknown_for_a_two_layer_model():
    message = refused("[model]\nlayers = 2\n[flow]\ntimescale = {layer2 = 0.5}")
    assert "layer2" in message


# --------------------------------------------------------------------------- what tomllib and floats cannot hold

@pytest.mark.parametrize("text, words", [
    ("x = " + "[" * 3000 + "]" * 3000, "nested too deeply"),
    ("seed = " + "1" * 5000, "digits"),
])
def test_toml_that_python_cannot_hold_is_refused(text, words):
    assert words in refused(text)


@pytest.mark.parametrize("text, key", [
    ("[flow]\ntime = 1.0\ndt = 5e-324", "dt"),
    ('[flow]\ntime = 5e-324\n[output]\nmetrics = {count = 5, spacing = "geometric"}', "metrics"),
    ("[output]\nmetrics = {count = 4611686018427387904}", "metrics"),
    ("[output]\nsnapshots = {count = 4611686018427387904, spacing = \"linear\"}", "snapshots"),
])
def test_steps_and_record_times_must_be_representable(text, key):
    assert key in refused(text)


def test_record_grids_of_ordinary_runs_pass():
    parse('[flow]\ntime = 1e-6\ndt = 1e-9\n[output]\nmetrics = {count = 1001}\nsnapshots = {count = 101}')


@pytest.mark.parametrize("text, key", [
    ("[model]\nlayers = 2.0", "layers"),
    ("[model]\nlayers = 3.0\nwidth = [4, 4]", "layers"),
    ('[problem]\ntarget = {kind = "teacher", layers = 2.0}', "layers"),
])
def test_integer_choices_take_integers_only(text, key):
    message = refused(text)
    assert key in message and "integers" in message


@pytest.mark.parametrize("text, key", [
    ('[model]\nwidth = 64\n[expectation]\nmethod = "radial"', "[model] width"),
    ('[expectation]\nmethod = "radial"\nn = 512', "[expectation] n"),
    ('[model]\nlayers = 3\nwidth = [8, 8]\n[expectation]\nmethod = "radial"', "[model] width"),
])
def test_neuron_and_sample_counts_are_refused_under_radial(text, key):
    message = refused(text)
    assert key in message and "[expectation] particles" in message


def test_the_default_problem_is_the_documented_one():
    problem = parse("")["problem"]
    assert problem["input"] == {"law": "radial", "radius": {"law": "uniform", "rmin": 0.0, "rmax": 2.0}}
    assert problem["target"]["kind"] == "relu_ball" and problem["target"]["radius"] == 1.0
    assert parse('[problem]\ninput = {law = "radial"}')["problem"] == problem
