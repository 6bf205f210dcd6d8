"""The version of the `humantask` distribution (pyproject.toml reads it from here)."""

__version__ = "0.2.0"
