"""`make bench`: the stack and its ceilings, side by side, in one run (bench/README.md)."""
