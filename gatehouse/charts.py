"""One way to put a plotly figure on a console page under a strict Content-Security-Policy.

The figure travels as JSON in a `<script type="application/json">` element (data, not
code: the policy does not run it) next to its div; `static/js/charts.js` draws every
such div when a page loads and when htmx swaps one in. No inline script is needed.
"""

from __future__ import annotations

import json
from typing import Any

# As Django's json_script: no `<`, `>` or `&` can end the element or open markup early.
_JSON_ESCAPES = {ord(">"): "\\u003E", ord("<"): "\\u003C", ord("&"): "\\u0026"}


def figure_html(div_id: str, data: list[dict], layout: dict, config: dict[str, Any]) -> str:
    payload = json.dumps({"data": data, "layout": layout, "config": config}, separators=(",", ":"))
    payload = payload.translate(_JSON_ESCAPES)
    height = int(layout.get("height") or 320)
    return (
        f'<div id="{div_id}" class="plotly-graph-div" data-plotly-figure="{div_id}-figure" '
        f'style="height:{height}px; width:100%;"></div>'
        f'<script type="application/json" id="{div_id}-figure">{payload}</script>'
    )
