"""meanfield: Wasserstein gradient flows of wide two- and three-layer networks.

Neurons are particles; the mean-field solver moves a weighted particle ensemble under
the gradient flow of the risk (conventions in the README).
"""

__version__ = "0.1.0"
