"""Figures of run files, written as files (matplotlib's Agg backend: no display needed).

:mod:`~meanfield.plotting.runs`: loss curves, particles (two layers) and learned
features (three layers) of a run; :mod:`~meanfield.plotting.finite`: the figures of
``meanfield compare``; :mod:`~meanfield.plotting.common`: the backend and saving.
"""

from meanfield.plotting.common import FORMATS, save
from meanfield.plotting.finite import finite_figures
from meanfield.plotting.runs import (feature_figure, loss_figure, loss_plot, loss_plot_path, particle_figure,
                                     plot_run)

__all__ = ["FORMATS", "feature_figure", "finite_figures", "loss_figure", "loss_plot", "loss_plot_path",
           "particle_figure", "plot_run", "save"]
