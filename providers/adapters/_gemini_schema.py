"""JSON Schema -> Gemini `Schema` (an OpenAPI 3 subset).

Gemini refuses keywords outside its subset (`additionalProperties`, `$ref`,
`const`...) with a 400, so tool parameters and response schemas are rewritten:
references inlined, `["x", "null"]` and `anyOf [x, null]` turned into
`nullable`, `const` into a one-value enum, and everything else unknown dropped.
"""

from __future__ import annotations

from typing import Any

_KEEP = frozenset(
    {
        "description", "title", "format", "minItems", "maxItems", "minimum", "maximum", "minLength",
        "maxLength", "pattern", "minProperties", "maxProperties", "propertyOrdering", "nullable",
    }
)  # fmt: skip
_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object", "null"})
_MAX_DEPTH = 32


def _resolve(ref: str, root: dict[str, Any]) -> dict[str, Any]:
    node: Any = root
    if not ref.startswith("#/"):
        return {}
    for key in ref[2:].split("/"):
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def _non_null(options: list[Any]) -> tuple[list[Any], bool]:
    rest = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
    return rest, len(rest) != len(options)


def to_gemini_schema(schema: Any, root: dict[str, Any] | None = None, depth: int = 0) -> dict[str, Any]:
    """The Gemini form of one JSON Schema node."""
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return {"type": "STRING"}
    root = schema if root is None else root
    ref = schema.get("$ref")
    if isinstance(ref, str):
        merged = {**_resolve(ref, root), **{k: v for k, v in schema.items() if k != "$ref"}}
        return to_gemini_schema(merged, root, depth + 1)
    out: dict[str, Any] = {k: v for k, v in schema.items() if k in _KEEP}
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            rest, nullable = _non_null(options)
            if len(rest) == 1:
                out.update(to_gemini_schema(rest[0], root, depth + 1))
            else:
                out["anyOf"] = [to_gemini_schema(o, root, depth + 1) for o in rest]
            if nullable:
                out["nullable"] = True
            return out
    all_of = schema.get("allOf")
    if isinstance(all_of, list) and all_of:
        merged: dict[str, Any] = {}
        for part in all_of:
            if isinstance(part, dict):
                merged.update(part)
        merged.update({k: v for k, v in schema.items() if k != "allOf"})
        return to_gemini_schema(merged, root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        rest = [k for k in kind if k != "null"]
        if len(rest) != len(kind):
            out["nullable"] = True
        kind = rest[0] if rest else "null"
    if kind is None:
        kind = "object" if "properties" in schema else ("array" if "items" in schema else None)
    if "const" in schema:
        out["enum"] = [str(schema["const"])]
        kind = "string"
    elif isinstance(schema.get("enum"), list):
        out["enum"] = [str(v) for v in schema["enum"] if v is not None]
        kind = "string"
    if isinstance(kind, str) and kind.lower() in _TYPES:
        out["type"] = kind.upper()
    if kind == "object" or out.get("type") == "OBJECT":
        properties = schema.get("properties")
        if isinstance(properties, dict) and properties:
            out["properties"] = {name: to_gemini_schema(sub, root, depth + 1) for name, sub in properties.items()}
            required = schema.get("required")
            if isinstance(required, list):
                kept = [name for name in required if name in properties]
                if kept:
                    out["required"] = kept
    if "items" in schema:
        out["items"] = to_gemini_schema(schema["items"], root, depth + 1)
    if out.get("format") not in (None, "enum", "date-time", "int32", "int64", "float", "double"):
        out.pop("format")
    return out


def has_properties(schema: Any) -> bool:
    """Whether a parameters schema declares anything (Gemini rejects empty OBJECTs there)."""
    return isinstance(schema, dict) and bool(schema.get("properties") or schema.get("$ref") or schema.get("anyOf"))
