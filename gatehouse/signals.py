"""Signals that cross app boundaries without an import in the wrong direction.

`organization_alert`: an app that may not know the alert channels (the ledger, which
imports none of the other apps) announces something an organization's people must
hear about; the budgets app, which owns the alert channels (the signed webhook and
e-mail of each organization's alert settings), delivers it. Arguments:
`organization_id`, `event` (e.g. "ledger.verification_failed"), `subject`, `text`
and a JSON-able `payload`.
"""

from django.dispatch import Signal

organization_alert = Signal()

# `route_models`: the budgets app asks which models each route of an organization could
# reach (for the routing-savings baseline) without importing routing; routing answers
# with `{route name: [model names]}` from its live policy. Argument: `organization_id`.
route_models = Signal()
