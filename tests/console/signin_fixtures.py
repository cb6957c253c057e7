"""Helpers of the sign-in and invitation tests (the `orgs` fixture is in conftest.py)."""

from __future__ import annotations

from rest_framework.test import APIClient

from console import services

PASSWORD = "correct-horse-battery-9"


def user(username: str, password: str | None = None, email: str = ""):
    return services.user_create(username=username, email=email or f"{username}@example.com", password=password)


def api_client(user, org) -> APIClient:
    client = APIClient()
    client.force_login(user)
    client.credentials(HTTP_X_GATEHOUSE_ORGANIZATION=org.slug)
    return client
