"""The management API's one body parser: JSON, with no NUL character anywhere in it.

PostgreSQL refuses NUL in text and in jsonb (SQLite takes it): refusing it at the door
keeps the answer a 400 on every database instead of a 500 on one of them.
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

NUL = "\x00"


def holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, dict):
        return any(holds_nul(key) or holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(holds_nul(item) for item in value)
    return False


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        data = super().parse(stream, media_type, parser_context)
        if holds_nul(data):
            raise ParseError("The body holds a NUL character (\\u0000), which no field accepts.")
        return data
