"""Code shared by every humantask service: message and HTTP schemas, settings, adapters."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("humantask-server")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"
