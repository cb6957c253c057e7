"""What the first-steps commands share: looking things up with clear errors."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.management.base import CommandError

from console.models import Organization


def organization_get(slug: str) -> Organization:
    organization = Organization.objects.filter(slug=slug).first()
    if organization is None:
        raise CommandError(f"No organization with slug {slug!r} (see `manage.py create_organization`).")
    return organization


def user_get(username: str) -> AbstractBaseUser:
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"No user {username!r} (see `manage.py create_user`).")
    return user
