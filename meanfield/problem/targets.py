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

Every target may be multiplied by ``amplitude``.  Radial targets set ``radial = True``.
"""

import numpy as np

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


class RadialTarget:
    radial = True

    def __init__(self, profile, amplitude=1.0):
        self.profile, self.amplitude = profile, float(amplitude)

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
