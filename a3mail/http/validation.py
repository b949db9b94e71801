"""Request validation: JSON bodies against declared fields, and query parameters.

A :class:`Body` lists its fields once; the same declaration validates requests (unknown
fields and wrong types are rejected naming the field) and produces the JSON Schema used in
the OpenAPI document, so the two cannot disagree.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import attrs

from a3mail.http.errors import InvalidRequest, field_error

MAX_INT = 2**63 - 1
_INTEGER = re.compile(r"[+-]?[0-9]+")
_JSON_TYPES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a finite number",
    "boolean": "true or false",
    "array": "an array",
    "object": "an object",
}


@attrs.frozen
class Field:
    """One field of a JSON body.

    ``minimum``/``maximum`` bound an integer's value, a string's length or an array's item
    count.  ``fmt`` is ``"date-time"`` (parsed into an aware datetime), ``"email"`` or
    ``"uri"`` (checked by the handler, declared for the schema).
    """

    kind: str
    description: str = ""
    required: bool = False
    nullable: bool = False
    minimum: int | None = None
    maximum: int | None = None
    items: Field | None = None
    enum: tuple[str, ...] | None = None
    fmt: str | None = None
    body: Body | None = None

    def check(self, name: str, value: Any) -> Any:
        """The value, converted (dates), or a 400 naming *name*."""
        if value is None:
            if self.nullable:
                return None
            raise field_error(name, f"{name} must be {_JSON_TYPES[self.kind]}, not null")
        if not _is_kind(self.kind, value):
            raise field_error(name, f"{name} must be {_JSON_TYPES[self.kind]}", value)
        if self.kind == "integer":
            low = self.minimum if self.minimum is not None else -MAX_INT
            high = self.maximum if self.maximum is not None else MAX_INT
            if not low <= value <= high:
                raise field_error(name, f"{name} must be between {low} and {high}", value)
        elif self.kind == "string":
            value = self._check_string(name, value)
        elif self.kind == "array":
            value = self._check_array(name, value)
        elif self.kind == "object" and self.body is not None:
            value = self.body.validate(value, prefix=f"{name}.")
        return value

    def _check_string(self, name: str, value: str) -> Any:
        if self.minimum is not None and len(value) < self.minimum:
            raise field_error(name, f"{name} must be at least {self.minimum} characters", value)
        if self.maximum is not None and len(value) > self.maximum:
            raise field_error(name, f"{name} must be at most {self.maximum} characters", value)
        if "\x00" in value:
            raise field_error(name, f"{name} must not contain NUL characters")
        if self.enum is not None and value not in self.enum:
            raise field_error(name, f"{name} must be one of {', '.join(self.enum)}", value)
        if self.fmt == "date-time":
            return parse_datetime(name, value)
        return value

    def _check_array(self, name: str, value: list[Any]) -> list[Any]:
        if self.minimum is not None and len(value) < self.minimum:
            raise field_error(name, f"{name} must have at least {self.minimum} items")
        if self.maximum is not None and len(value) > self.maximum:
            raise field_error(name, f"{name} must have at most {self.maximum} items")
        if self.items is None:
            return value
        return [self.items.check(f"{name}[{i}]", item) for i, item in enumerate(value)]

    def json_schema(self) -> dict[str, Any]:
        """This field as JSON Schema (OpenAPI 3.1)."""
        if self.kind == "object" and self.body is not None:
            schema = self.body.json_schema()
        else:
            schema = {"type": self.kind}
        if self.description:
            schema["description"] = self.description
        bounds = {
            "integer": ("minimum", "maximum"),
            "string": ("minLength", "maxLength"),
            "array": ("minItems", "maxItems"),
        }.get(self.kind)
        if bounds is not None:
            if self.minimum is not None:
                schema[bounds[0]] = self.minimum
            if self.maximum is not None:
                schema[bounds[1]] = self.maximum
        if self.kind == "string" and self.fmt is None and self.enum is None:
            schema["pattern"] = "^[^\\u0000]*$"
        if self.enum is not None:
            schema["enum"] = list(self.enum)
        if self.fmt is not None:
            schema["format"] = self.fmt
        if self.items is not None:
            schema["items"] = self.items.json_schema()
        if self.nullable:
            schema["type"] = [schema["type"], "null"]
        return schema


@attrs.frozen
class Body:
    """The fields of one JSON object body; anything else is refused."""

    fields: Mapping[str, Field]
    description: str = ""

    def validate(self, data: Any, prefix: str = "") -> dict[str, Any]:
        """The checked fields present in *data* (a dict), or a 400 naming the field."""
        if not isinstance(data, dict):
            where = prefix.rstrip(".") or "body"
            raise field_error(where, f"{where} must be a JSON object")
        for name in data:
            if name not in self.fields:
                raise field_error(prefix + name, f"unknown field: {prefix + name}")
        result: dict[str, Any] = {}
        for name, spec in self.fields.items():
            if name in data:
                result[name] = spec.check(prefix + name, data[name])
            elif spec.required:
                raise field_error(prefix + name, f"{prefix + name} is required")
        return result

    def json_schema(self) -> dict[str, Any]:
        """This body as JSON Schema (OpenAPI 3.1)."""
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {name: f.json_schema() for name, f in self.fields.items()},
            "additionalProperties": False,
        }
        required = [name for name, f in self.fields.items() if f.required]
        if required:
            schema["required"] = required
        if self.description:
            schema["description"] = self.description
        return schema


def _is_kind(kind: str, value: Any) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "number":
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return number and math.isfinite(value)
    return isinstance(value, {"string": str, "array": list, "object": dict}[kind])


def parse_datetime(name: str, text: str) -> datetime:
    """An ISO 8601 date-time (``Z`` or an offset; none means UTC) as an aware datetime."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise field_error(name, f"{name} must be an ISO 8601 date-time", text) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def parse_json(raw: bytes) -> Any:
    """Decode a request body as JSON (empty means ``{}``); 400 if it is not JSON."""
    if not raw.strip():
        return {}
    try:
        text = raw.decode("utf-8")
        return json.loads(text, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidRequest("the request body is not valid JSON", {"field": "body"}) from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# -- query parameters ---------------------------------------------------------------------


def query_values(request: Any, name: str) -> list[str]:
    """Every value of one query parameter, decoded (400 if not UTF-8)."""
    raw = request.args.get(name.encode(), [])
    try:
        return [v.decode("utf-8") for v in raw]
    except UnicodeDecodeError:
        raise field_error(name, f"{name} must be UTF-8 text") from None


def query_str(request: Any, name: str, default: str | None = None, max_length: int = 256) -> Any:
    """A single query parameter as text (the last one given), or *default*."""
    values = query_values(request, name)
    if not values:
        return default
    value = values[-1]
    if len(value) > max_length or "\x00" in value:
        raise field_error(name, f"{name} must be at most {max_length} characters", value)
    return value


def query_int(
    request: Any, name: str, default: int, minimum: int = 0, maximum: int = MAX_INT
) -> int:
    """An integer query parameter within [minimum, maximum], or *default*."""
    text = query_str(request, name)
    if text is None or text == "":
        return default
    if not _INTEGER.fullmatch(text) or len(text) > 20:
        raise field_error(name, f"{name} must be an integer", text)
    value = int(text)
    if not minimum <= value <= maximum:
        raise field_error(name, f"{name} must be between {minimum} and {maximum}", value)
    return value


def query_bool(request: Any, name: str, default: bool = False) -> bool:
    """A boolean query parameter: true/false, 1/0, yes/no."""
    text = query_str(request, name)
    if text is None or text == "":
        return default
    lowered = text.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise field_error(name, f"{name} must be true or false", text)
