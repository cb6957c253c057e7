"""The data-plane side of budgets and rate limits: compiled definitions, the
admission (reserve on every scope at once), settlement, holds and their expiry.

The pipeline talks to this package only through `budgets.facade`.
"""
