"""The cost cascade: cheapest layer first, escalate only when its answer fails
the layer's validators, compress the older turns before escalating, and bill
the sum of every layer's cost on one usage record."""
