"""Console pages of routing: routes, rules, the compliance matrix, settings, policy
history with approval and rollback, the dry run and deployment health.

Everyone in the organization reads; owners and admins change. Every change goes
through `routing.services`, which records a policy version (pending when the
organization requires a second admin's approval).
"""
