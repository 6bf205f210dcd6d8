"""Issue 13's evidence: our request/reply (`CommandClient` + `CommandServer`) next to the same
request/reply written with FastStream, checked for the same behaviour and timed in one
run. See README.md here; FastStream lives in a scratch venv, never in the project's locks.
"""
