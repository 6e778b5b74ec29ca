"""bertjp: the library behind the pipelines (pure Python, no Beam import)."""

from bertjp.version import __version__

__all__ = ["__version__"]
