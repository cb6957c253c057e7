from tests.budgets.helpers import clean_budget_state, store, world  # noqa: F401
