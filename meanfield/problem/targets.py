"""Target functions y(x).

    relu_ball      y = max(0, radius - ||x||)                  (radius 1: ReLU(1 - ||x||))
    radial         y = g(||x||) for a named profile g:
                     relu_ball  max(0, radius - r)
                     gaussian   exp(-r^2 / (2 width^2))
                     cosine     cos(frequency r)
                     norm       r
    single_index   y = link(<beta, x>), beta = scale * (unit direction)
                   link: an activation, "linear", "hermite2" (z^2 - 1), "hermite3" (z^3 - 3z)
    teacher        y = f_teacher(x), a fixed network of the model's family

Every target may be multiplied by ``amplitude``.  Radial targets set ``radial = True``
and carry the radii where their profile has kinks (relu_ball: rho = radius), where the
radial solver splits its quadrature.  ``TARGETS`` maps each ``[problem] target`` kind to
its constructor.
"""

import numpy as np

from meanfield import seeding
from meanfield.model import activations

PROFILES = ("relu_ball", "gaussian", "cosine", "norm")
LINKS = activations.NAMES + ("linear", "hermite2", "hermite3")


def radial_profile(name, radius=1.0, width=1.0, frequency=1.0):
    """The function g(r) of a named radial profile."""
    if name == "relu_ball":
        return lambda r: np.maximum(radius - r, 0.0)
    if name == "gaussian":
        return lambda r: np.exp(-r * r / (2.0 * width * width))
    if name == "cosine":
        return lambda r: np.cos(frequency * r)
    if name == "norm":
        return lambda r: r
    raise ValueError(f"unknown radial profile {name!r}; allowed: {', '.join(PROFILES)}")


def link_function(name):
    if name == "linear":
        return lambda z: z
    if name == "hermite2":
        return lambda z: z * z - 1.0
    if name == "hermite3":
        return lambda z: z ** 3 - 3.0 * z
    if name in activations.NAMES:
        return lambda z: activations.value(name, z)
    raise ValueError(f"unknown link {name!r}; allowed: {', '.join(LINKS)}")


def profile_kinks(name, radius=1.0):
    """The radii where a named profile is not analytic (relu_ball: radius; the others: none)."""
    return [radius] if name == "relu_ball" else []


class RadialTarget:
    """y(x) = amplitude * profile(||x||), with the radii ``kinks`` where the profile has kinks."""

    radial = True

    def __init__(self, profile, kinks=(), amplitude=1.0, name="custom"):
        self.profile, self.kinks = profile, np.asarray(kinks, dtype=float)
        self.amplitude, self.name = float(amplitude), name

    def values(self, rho):
        return self.amplitude * self.profile(np.asarray(rho, dtype=float))

    def __call__(self, X):
        return self.amplitude * self.profile(np.linalg.norm(X, axis=1))


class SingleIndexTarget:
    radial = False

    def __init__(self, direction, link, amplitude=1.0):
        self.direction = np.asarray(direction, dtype=float)
        self.link_name = link
        self.link = link_function(link)
        self.amplitude = float(amplitude)

    def __call__(self, X):
        return self.amplitude * self.link(X @ self.direction)


class TeacherTarget:
    """A fixed network; ``params`` is its flat parameter vector."""

    radial = False

    def __init__(self, network, params, amplitude=1.0):
        self.network, self.params, self.amplitude = network, params, float(amplitude)

    def __call__(self, X):
        return self.amplitude * self.network.output(self.params, X)


# ------------------------------------------------------------------ the registry
# constructor(spec, d, rng, dtype) -> (target, arrays to store under /target, attributes)

def _relu_ball(spec, d, rng, dtype):
    radius = spec.get("radius", 1.0)
    return RadialTarget(radial_profile("relu_ball", radius), [radius], spec.get("amplitude", 1.0), "relu_ball"), {}, {}


def _radial(spec, d, rng, dtype):
    name, radius = spec.get("profile"), spec.get("radius", 1.0)
    profile = radial_profile(name, radius, spec.get("width", 1.0), spec.get("frequency", 1.0))
    target = RadialTarget(profile, profile_kinks(name, radius), spec.get("amplitude", 1.0), name)
    return target, {}, {"profile": name}


def normable(vector):
    """``vector`` itself when ||v|| is a positive finite float, else v / max_k |v_k| (entries
    near 1e308 overflow the norm, entries near 1e-308 underflow it; the rescaled vector's
    norm lies in [1, sqrt(d)]), so that v / ||v|| is the unit vector in its direction."""
    vector = np.asarray(vector, dtype=float)
    with np.errstate(over="ignore", under="ignore"):
        norm = np.linalg.norm(vector)
    return vector if 0 < norm < np.inf else vector / np.max(np.abs(vector))


def _single_index(spec, d, rng, dtype):
    direction = np.asarray(spec["direction"]) if spec["direction"] is not None else rng.standard_normal(d)
    direction = normable(direction)
    direction = spec["scale"] * direction / np.linalg.norm(direction)
    target = SingleIndexTarget(direction, spec["link"], spec["amplitude"])
    return target, {"direction": direction}, {"link": spec["link"]}


def _teacher(spec, d, rng, dtype):
    from meanfield.model import initialization
    from meanfield.model.networks import build_network

    teacher = build_network(spec["layers"], d, spec["width"], spec["activation"], spec["bias"])
    if spec["params"] is not None:
        params = teacher.layout.pack(spec["params"])
    else:
        params = initialization.initialize(teacher, spec["init"], rng)
    arrays = {f"{f.group}/{f.name}": params[f.slice].reshape(f.shape) for f in teacher.layout.fields}
    attrs = {"layers": spec["layers"], "activation": spec["activation"], "bias": spec["bias"]}
    return TeacherTarget(teacher, params.astype(dtype), spec["amplitude"]), arrays, attrs


TARGETS = {"relu_ball": _relu_ball, "radial": _radial, "single_index": _single_index, "teacher": _teacher}
RADIAL_KINDS = ("relu_ball", "radial")       # the kinds whose targets are radial


def from_config(spec, d, dtype=np.float64, seed=0):
    """(target, arrays to store under /target, attributes) of a ``[problem] target`` table.

    Random parts (a single-index direction, a teacher's parameters) come from the
    ``target`` stream of the table's own seed, else of ``seed``.
    """
    kind = spec.get("kind", "relu_ball")
    if kind not in TARGETS:
        raise ValueError(f"unknown target kind {kind!r}; allowed: {', '.join(TARGETS)}")
    rng = seeding.stream(seed if spec.get("seed") is None else spec["seed"], "target")
    return TARGETS[kind](spec, d, rng, dtype)
