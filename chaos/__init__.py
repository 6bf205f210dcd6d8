"""`make chaos`: the contract's promises (a 200 is durable, a task completes once, a
callback is tried once or twice) checked while processes die at random moments under
load. See README, "Resilience", and `python -m chaos --help`."""
