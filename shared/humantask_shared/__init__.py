"""Code shared by every humantask service, on two floors: `core` (models, messages,
errors, the topology as data; no I/O) and `runtime` (connections, commands and events
on RabbitMQ, MongoDB, tracing, health, settings). `runtime` builds on `core`."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("humantask-server")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"
