"""The routing engine of the data plane: a compiled, immutable snapshot of every
organization's policy, the strategies that order candidates, and the shared
state (health, latency, in-flight, breakers) they read."""
