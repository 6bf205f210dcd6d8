"""The pure floor: what the services say and decide, with no I/O.

Models, messages, errors, the topology as data, timestamps, credential hashing, the
broker users and their access rules. Nothing here imports a broker, database, HTTP or
tracing library (`tests/unit/test_floors.py`), so a service's domain may import any of
it, and the runtime floor (`humantask_shared.runtime`) builds on it, never the reverse.
"""
