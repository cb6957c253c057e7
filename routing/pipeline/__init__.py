"""The data-plane pipeline: one small module per stage, strung together by the views.

authenticate -> validate -> classify -> guard(in) -> admit -> route -> call ->
guard(out) -> settle. The route stage has two halves around admission:
`route_resolve` (which route, which candidates may serve this request) before it,
so admission can price the worst case, and `route_order` (health and strategy)
after it. Guard is not built yet; its place is marked in `routing.views`.
"""
