"""Routing configuration models arrive with the routing engine."""
