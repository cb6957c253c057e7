"""One error shape for the management API.

Django ValidationErrors raised by services become 400s with field messages
(`{"field": ["..."]}`) or, when they name no field, `{"detail": "..."}`. A missing
object is always a plain "Not found." so an id from another organization reveals
nothing, not even the kind of thing it names.
"""

from __future__ import annotations

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler


def api_exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            detail = {
                (api_settings.NON_FIELD_ERRORS_KEY if field == NON_FIELD_ERRORS else field): messages
                for field, messages in exc.message_dict.items()
            }
        else:
            detail = {"detail": " ".join(exc.messages)}
        exc = exceptions.ValidationError(detail)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DataError | OverflowError):
        # A value the database cannot store (out of its range): the input's fault, not the server's.
        exc = exceptions.ValidationError({"detail": "A value is out of the range the database can store."})
    return exception_handler(exc, context)
