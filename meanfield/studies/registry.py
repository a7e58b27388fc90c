"""The registered studies, by name (``meanfield study``)."""

from meanfield.config import ConfigError
from meanfield.studies import depth_separation, finite_width, radial_refinement

STUDIES = {study.name: study for study in (depth_separation.STUDY, finite_width.STUDY, radial_refinement.STUDY)}


def get(name):
    """The registered study ``name`` (ConfigError naming the known ones otherwise)."""
    if name not in STUDIES:
        raise ConfigError(f"unknown study {name!r}; known: {', '.join(STUDIES)}")
    return STUDIES[name]
