"""Strict request input: a bounded JSON body read, and declared fields checked one by one.

Every refusal names its field, so a client can point at the exact input to fix. Each field declaration is also
its own JSON Schema (`json_schema`), from which the OpenAPI document describes request bodies: the rules a client
reads are the rules the gateway applies, from one declaration.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, overload
from urllib.parse import urlsplit

from starlette.requests import ClientDisconnect, Request

from gateway.http.errors import ApiError, InvalidField

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_MISSING = object()


async def read_json(request: Request, max_bytes: int) -> Any:
    """The request body parsed as JSON: 415 unless JSON, 413 past `max_bytes`, 400 when malformed, 499 when the
    client hung up before sending all of it."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json", field="content-type")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_bytes:
                raise _too_large(max_bytes)
    except ClientDisconnect:
        # Nobody is left to answer; 499 (nginx's "client closed request") keeps it out of the 5xx and the error log.
        raise ApiError(499, "client_disconnected", "the client closed the connection mid-body") from None
    try:
        return json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:
        raise ApiError(400, "malformed_json", f"the body is not valid JSON: {error}") from None


def _too_large(max_bytes: int) -> ApiError:
    return ApiError(413, "body_too_large", f"the body must be at most {max_bytes} bytes")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


# More digits than any bound we use: refused before int(), which would parse (or, past 4,300 digits, raise on) it.
_MAX_QUERY_DIGITS = 18


@overload
def query_int(request: Request, name: str, *, minimum: int, maximum: int, default: int) -> int: ...
@overload
def query_int(request: Request, name: str, *, minimum: int, maximum: int, default: None = None) -> int | None: ...
def query_int(request: Request, name: str, *, minimum: int, maximum: int, default: int | None = None) -> int | None:
    """The query parameter `name` as an integer from `minimum` to `maximum`, `default` when absent.

    Only ASCII digits count: str.isdigit also accepts digits such as "²" that int() refuses, and int() accepts
    signs, spaces, underscores and other scripts' digits that no client means as a number here.
    """
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > _MAX_QUERY_DIGITS or not minimum <= int(raw) <= maximum:
        raise InvalidField(name, f"must be an integer from {minimum} to {maximum}")
    return int(raw)


def only_params(request: Request, allowed: tuple[str, ...]) -> None:
    """422 `unknown_field` for a query parameter the endpoint does not take (a typo must not be ignored)."""
    for name in request.query_params:
        if name not in allowed:
            expected = f"expected {', '.join(allowed)}" if allowed else "this endpoint takes no query parameters"
            raise ApiError(422, "unknown_field", f"unknown query parameter; {expected}", field=name)


def query_choice(request: Request, name: str, options: tuple[str, ...]) -> str | None:
    """The query parameter `name`, one of `options`, given at most once; None when absent."""
    values = request.query_params.getlist(name)
    if not values:
        return None
    if len(values) > 1 or values[0] not in options:
        raise InvalidField(name, f"give it once, one of {', '.join(options)}")
    return values[0]


def uuid_param(value: str, field: str) -> str:
    """A lowercase canonical UUID, the shape of every id Jobstream hands out."""
    if not _UUID.match(value):
        raise InvalidField(field, "must be a lowercase UUID like 3f2b8c1e-6d4a-4e8b-9a1c-2b7d5e9f0a13")
    return value


class FieldSpec(Protocol):
    def check(self, name: str, value: Any) -> Any: ...

    def json_schema(self) -> dict[str, Any]: ...


# C0 and C1 controls, DEL, and the Unicode line and paragraph separators: none belongs in a one-line field, where
# a CR/LF could split an email header and the others garble a UI. Free text keeps only tab, LF and CR of them.
_SINGLE_LINE_REFUSED = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MULTILINE_REFUSED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
# The same rules as ECMA-262 patterns, for the OpenAPI document.
SINGLE_LINE_PATTERN = "^[^\\u0000-\\u001F\\u007F-\\u009F\\u2028\\u2029]*$"
MULTILINE_PATTERN = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F\\u2028\\u2029]*$"


@dataclass(frozen=True)
class Text:
    """A string of `min_length` to `max_length` characters.

    Every use says whether it is `multiline` free text (a cover letter, a description: tab, LF and CR allowed) or a
    single line (a title, a name, a tag: no control characters at all, no line or paragraph separators).
    """

    min_length: int
    max_length: int
    pattern: re.Pattern[str] | None = None
    pattern_hint: str = ""
    # Required, so that every field says which it is.
    multiline: bool = dataclasses.field(kw_only=True)

    def check(self, name: str, value: Any) -> str:
        if not isinstance(value, str):
            raise InvalidField(name, "must be a string")
        if not self.min_length <= len(value) <= self.max_length:
            raise InvalidField(name, f"must be {self.min_length} to {self.max_length} characters long")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidField(name, "must be valid Unicode (no lone surrogates)") from None
        refused = (_MULTILINE_REFUSED if self.multiline else _SINGLE_LINE_REFUSED).search(value)
        if refused is not None:
            allowed = "other than tab and line breaks" if self.multiline else "or line breaks"
            raise InvalidField(name, f"must not contain control characters {allowed} (found U+{ord(refused[0]):04X})")
        if self.pattern is not None and not self.pattern.match(value):
            raise InvalidField(name, f"must be {self.pattern_hint}")
        return value

    def json_schema(self) -> dict[str, Any]:
        # A field's own pattern admits no control characters either; ECMA-262 reads these Python patterns alike.
        if self.pattern is not None:
            rule = {"pattern": self.pattern.pattern, "description": self.pattern_hint}
        elif self.multiline:
            rule = {
                "pattern": MULTILINE_PATTERN,
                "description": "free text: tab and line breaks, no other control characters",
            }
        else:
            rule = {"pattern": SINGLE_LINE_PATTERN, "description": "one line: no control characters, no line breaks"}
        return {"type": "string", "minLength": self.min_length, "maxLength": self.max_length, **rule}


@dataclass(frozen=True)
class HttpsUrl:
    max_length: int

    def check(self, name: str, value: Any) -> str:
        text = Text(1, self.max_length, multiline=False).check(name, value)
        if any(c.isspace() for c in text) or not text.isprintable():
            raise InvalidField(name, "must be an https:// URL without spaces")
        try:
            parts = urlsplit(text)
            host = parts.hostname
        except ValueError:  # urllib refuses malformed hosts such as "https://["
            raise InvalidField(name, "must be an https:// URL with a valid host") from None
        if parts.scheme != "https" or not host:
            raise InvalidField(name, "must be an https:// URL with a host")
        return text

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "uri", "pattern": "^https://[^\\s]+$", "maxLength": self.max_length}


@dataclass(frozen=True)
class Integer:
    minimum: int
    maximum: int

    def check(self, name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidField(name, "must be an integer")
        if not self.minimum <= value <= self.maximum:
            raise InvalidField(name, f"must be between {self.minimum} and {self.maximum}")
        return value

    def json_schema(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": self.minimum, "maximum": self.maximum}


@dataclass(frozen=True)
class Boolean:
    def check(self, name: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise InvalidField(name, "must be true or false")
        return value

    def json_schema(self) -> dict[str, Any]:
        return {"type": "boolean"}


@dataclass(frozen=True)
class Choice:
    options: tuple[str, ...]

    def check(self, name: str, value: Any) -> str:
        if value not in self.options:
            raise InvalidField(name, f"must be one of {', '.join(self.options)}")
        return str(value)

    def json_schema(self) -> dict[str, Any]:
        return {"enum": list(self.options)}


@dataclass(frozen=True)
class TextList:
    item: Text
    max_items: int

    def check(self, name: str, value: Any) -> list[str]:
        if not isinstance(value, list):
            raise InvalidField(name, "must be a list of strings")
        if len(value) > self.max_items:
            raise InvalidField(name, f"must hold at most {self.max_items} items")
        items = [self.item.check(f"{name}[{i}]", v) for i, v in enumerate(value)]
        return list(dict.fromkeys(items))

    def json_schema(self) -> dict[str, Any]:
        return {"type": "array", "maxItems": self.max_items, "items": self.item.json_schema()}


@dataclass(frozen=True)
class Timestamp:
    """An ISO 8601 date-time with a UTC offset, returned as epoch milliseconds."""

    def check(self, name: str, value: Any) -> int:
        if not isinstance(value, str) or len(value) > 40:
            raise InvalidField(name, "must be an ISO 8601 date-time such as 2026-12-31T23:59:00Z")
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidField(name, "must be an ISO 8601 date-time such as 2026-12-31T23:59:00Z") from None
        if moment.tzinfo is None:
            raise InvalidField(name, "must carry a UTC offset, e.g. a trailing Z")
        try:
            year = moment.astimezone(UTC).year
        except OverflowError:  # an offset pushing 0001-01-01 or 9999-12-31 out of datetime's range
            year = moment.year
        if not 1970 < year < 9999:
            raise InvalidField(name, "must be a date between 1971 and 9998")
        return int(moment.timestamp() * 1000)

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "date-time", "maxLength": 40}


@dataclass(frozen=True)
class Field:
    spec: FieldSpec
    required: bool = True
    nullable: bool = False

    def json_schema(self) -> dict[str, Any]:
        schema = self.spec.json_schema()
        if not self.nullable:
            return schema
        if isinstance(schema.get("type"), str):
            return {**schema, "type": [schema["type"], "null"]}
        return {"anyOf": [schema, {"type": "null"}]}


def object_schema(fields: Mapping[str, Field], *, partial: bool = False) -> dict[str, Any]:
    """The JSON Schema of what `check_object(body, fields, partial=partial)` accepts."""
    schema: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {name: field.json_schema() for name, field in fields.items()},
    }
    if partial:
        schema["minProperties"] = 1
    else:
        schema["required"] = [name for name, field in fields.items() if field.required]
    return schema


def check_object(
    body: Any, fields: Mapping[str, Field], *, partial: bool = False, where: str = "body"
) -> dict[str, Any]:
    """The declared fields of a JSON object, checked; unknown fields are refused.

    With `partial` (PATCH), every field is optional but at least one must be given.
    """
    if not isinstance(body, dict):
        raise InvalidField(None, f"the {where} must be a JSON object", code="invalid_body")
    for name in body:
        if name not in fields:
            raise InvalidField(name, f"unknown field; expected {', '.join(fields)}", code="unknown_field")
    checked: dict[str, Any] = {}
    for name, field in fields.items():
        value = body.get(name, _MISSING)
        if value is _MISSING:
            if field.required and not partial:
                raise InvalidField(name, "is required", code="missing_field")
            continue
        if value is None:
            if not field.nullable:
                raise InvalidField(name, "must not be null")
            checked[name] = None
            continue
        checked[name] = field.spec.check(name, value)
    if partial and not checked:
        raise InvalidField(None, f"give at least one of {', '.join(fields)}", code="invalid_body")
    return checked
