"""Lockouts become audit events: one for the platform and one in each organization of the account."""

from __future__ import annotations

from axes.signals import user_locked_out
from django.contrib.auth import get_user_model
from django.dispatch import receiver

from audit.events import audit_record
from console.models import Membership


@receiver(user_locked_out, dispatch_uid="gatehouse-login-locked-out")
def login_locked_out(sender, request=None, username=None, ip_address=None, **kwargs) -> None:
    data = {"ip_address": ip_address or "", "username": username or ""}
    audit_record(action="login.locked_out", actor="system", target=username or ip_address or "", data=data)
    user = get_user_model().objects.filter(username=username).first() if username else None
    if user is not None:
        for org_id in Membership.objects.filter(user=user).values_list("organization_id", flat=True):
            audit_record(action="login.locked_out", organization_id=org_id, actor="system", target=username, data=data)
