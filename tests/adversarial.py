"""Hypothesis strategies for schema-valid but hostile events, built from the newest Avro schema of each event.

Every value encodes with the event's schema, so it reaches a stage's processing rather than its decoder:
control characters (C0, C1, U+2028/2029), mixed scripts, maximal and empty strings, SQL and header injection,
extreme numbers, timestamps far in the past and the future, unknown ids.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from hypothesis import strategies as st

from schemas.avro import EventSchema

HOSTILE_TEXT = (
    "",
    " ",
    "\x00",
    "Dev\r\nBcc: x@evil.io",
    "line\u2028separator\u2029paragraph",
    "\x85\x9b[31mC1 controls\x7f",
    "'; DROP TABLE applications; --",
    "Ünïcödé ñame 名前 اسم שם",
    "\u202eevil-rtl\u202c",
    "😀" * 300,
    "x" * 5_000,
    "Z̸̡̛͓̯̖̪̯̣̹̏ͯ̆ͯ̇ą̶̺̟͕̝̄̉ͨ̀ļ̙̖̓̓ͬ̌g̴͈̝ͧ̉̅o̧̓",
)
INT_EXTREMES = (0, -1, 1, 2**31 - 1, -(2**31))
LONG_EXTREMES = (*INT_EXTREMES, 2**63 - 1, -(2**63), 2**53 + 1)
# Epoch milliseconds: year 1, 1969, the epoch, now-ish, year 9999, and past what a datetime can hold.
TIMESTAMP_MILLIS = (-62_135_596_800_000, -1, 0, 1_767_225_600_000, 253_402_300_799_999, 2**62, -(2**62))

_texts = st.one_of(
    st.sampled_from(HOSTILE_TEXT),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=300),
    st.uuids().map(str),
)


def hostile_records(event: EventSchema, fixed: dict[str, Any] | None = None) -> st.SearchStrategy[dict[str, Any]]:
    """Records of `event`'s newest schema with hostile values; `fixed` fields (a message key, say) are kept as given."""
    schema = json.loads(event.latest.path.read_text())
    return _record(schema, {}).map(lambda record: {**record, **(fixed or {})})


def _record(schema: dict[str, Any], named: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    named[schema["name"]] = schema
    return st.fixed_dictionaries({field["name"]: _value(field["type"], named) for field in schema["fields"]})


def _value(schema: Any, named: dict[str, Any]) -> st.SearchStrategy[Any]:
    if isinstance(schema, list):
        return st.one_of([_value(branch, named) for branch in schema])
    if isinstance(schema, str):
        return _primitive(schema, named)
    kind = schema["type"]
    logical = schema.get("logicalType")
    if logical in ("timestamp-millis", "local-timestamp-millis"):
        return st.one_of(st.sampled_from(TIMESTAMP_MILLIS), st.integers(-(2**62), 2**62))
    if kind == "record":
        return _record(schema, named)
    if kind == "enum":
        return st.sampled_from(schema["symbols"])
    if kind == "array":
        return st.lists(_value(schema["items"], named), max_size=12)
    if kind == "map":
        return st.dictionaries(_texts, _value(schema["values"], named), max_size=8)
    if kind == "fixed":
        return st.binary(min_size=schema["size"], max_size=schema["size"])
    return _primitive(kind, named)


def _primitive(name: str, named: dict[str, Any]) -> st.SearchStrategy[Any]:
    if name == "null":
        return st.none()
    if name == "boolean":
        return st.booleans()
    if name == "int":
        return st.one_of(st.sampled_from(INT_EXTREMES), st.integers(-(2**31), 2**31 - 1))
    if name == "long":
        return st.one_of(st.sampled_from(LONG_EXTREMES), st.integers(-(2**63), 2**63 - 1))
    if name in ("float", "double"):
        return st.floats(allow_nan=True, allow_infinity=True, width=32 if name == "float" else 64)
    if name == "string":
        return _texts
    if name == "bytes":
        return st.binary(max_size=64)
    if name in named:
        return _record(named[name], named)
    raise ValueError(f"no strategy for Avro type {name!r}")


UNDECODABLE = (b"", b"not avro at all", b"\xc3\x01" + b"\x00" * 8 + b"garbage", b"\xc3\x01\xff", uuid.uuid4().bytes)
