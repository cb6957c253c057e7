"""The console's assets are served locally (no CDN), with ETags."""

from __future__ import annotations

import httpx
import pytest

# The server behind `gateway_server` needs the test database to exist.
pytestmark = pytest.mark.django_db


def test_vendored_assets_are_served_with_etags(gateway_server):
    for name in ("vendor/htmx.min.js", "vendor/plotly.min.js", "css/console.css"):
        response = httpx.get(f"{gateway_server.url}/static/{name}")
        assert response.status_code == 200, name
        assert len(response.content) > 1000
        again = httpx.get(f"{gateway_server.url}/static/{name}", headers={"if-none-match": response.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
    assert (
        httpx.get(f"{gateway_server.url}/static/vendor/htmx.min.js")
        .headers["content-type"]
        .startswith("text/javascript")
    )


def test_missing_and_escaping_paths_are_404(gateway_server):
    assert httpx.get(f"{gateway_server.url}/static/nope.js").status_code == 404
    assert httpx.get(f"{gateway_server.url}/static/../gatehouse/settings.py").status_code == 404
    assert httpx.get(f"{gateway_server.url}/static/%2e%2e/gatehouse/settings.py").status_code == 404
