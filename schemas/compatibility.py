"""Backward compatibility of Avro schemas: can a newer reader read what an older writer wrote?

Follows the resolution rules of the Avro specification ("Schema Resolution") on fastavro's parsed
schemas: promotions of numbers, string<->bytes, record fields matched by name or alias, defaults for
fields the writer lacked, enum symbols, unions branch by branch.
"""

from __future__ import annotations

from typing import Any

_PROMOTIONS = {
    "int": {"int", "long", "float", "double"},
    "long": {"long", "float", "double"},
    "float": {"float", "double"},
    "string": {"string", "bytes"},
    "bytes": {"bytes", "string"},
}
_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


def backward_problems(writer: Any, reader: Any) -> list[str]:
    """Why `reader` cannot read data written with `writer`; an empty list means compatible."""
    writer_names: dict[str, Any] = {}
    reader_names: dict[str, Any] = {}
    _collect(writer, writer_names)
    _collect(reader, reader_names)
    problems: list[str] = []
    _check(writer, reader, writer_names, reader_names, "$", problems, set())
    return problems


def _collect(schema: Any, names: dict[str, Any]) -> None:
    if isinstance(schema, list):
        for branch in schema:
            _collect(branch, names)
    elif isinstance(schema, dict):
        if schema.get("type") in ("record", "enum", "fixed") and "name" in schema:
            names[schema["name"]] = schema
        for field in schema.get("fields", []):
            _collect(field["type"], names)
        for key in ("items", "values"):
            if key in schema:
                _collect(schema[key], names)


def _resolve(schema: Any, names: dict[str, Any]) -> Any:
    if isinstance(schema, str) and schema not in _PRIMITIVES:
        return names[schema]
    if isinstance(schema, dict) and schema.get("type") in _PRIMITIVES:
        return schema["type"]  # a primitive with a logical type: resolution uses the underlying type
    return schema


def _kind(schema: Any) -> str:
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, str):
        return schema
    return str(schema["type"])


def _matches(writer: Any, reader: Any, wn: dict[str, Any], rn: dict[str, Any]) -> bool:
    problems: list[str] = []
    _check(writer, reader, wn, rn, "", problems, set())
    return not problems


def _check(
    writer: Any,
    reader: Any,
    wn: dict[str, Any],
    rn: dict[str, Any],
    path: str,
    problems: list[str],
    seen: set[tuple[str, str]],
) -> None:
    writer, reader = _resolve(writer, wn), _resolve(reader, rn)
    wk, rk = _kind(writer), _kind(reader)

    if wk == "union":
        for branch in writer:
            if rk == "union":
                if not any(_matches(branch, option, wn, rn) for option in reader):
                    problems.append(f"{path}: writer branch {_kind(_resolve(branch, wn))} has no reader branch")
            else:
                _check(branch, reader, wn, rn, path, problems, seen)
        return
    if rk == "union":
        if not any(_matches(writer, option, wn, rn) for option in reader):
            problems.append(f"{path}: writer type {wk} matches no branch of the reader's union")
        return
    if wk in _PRIMITIVES or rk in _PRIMITIVES:
        if rk not in _PROMOTIONS.get(wk, {wk}):
            problems.append(f"{path}: writer {wk} cannot be read as {rk}")
        return
    if wk != rk:
        problems.append(f"{path}: writer {wk} cannot be read as {rk}")
        return
    if wk in ("record", "enum", "fixed") and not _same_name(writer, reader):
        problems.append(f"{path}: writer {wk} {writer['name']} is not reader {reader['name']} nor an alias of it")
        return
    if wk == "record":
        key = (writer["name"], reader["name"])
        if key in seen:  # recursive types: already being checked higher up
            return
        seen = seen | {key}
        writer_fields = {field["name"]: field for field in writer["fields"]}
        for field in reader["fields"]:
            names = [field["name"], *field.get("aliases", [])]
            match = next((writer_fields[name] for name in names if name in writer_fields), None)
            if match is None:
                if "default" not in field:
                    problems.append(f"{path}.{field['name']}: added without a default")
                continue
            _check(match["type"], field["type"], wn, rn, f"{path}.{field['name']}", problems, seen)
    elif wk == "enum":
        missing = sorted(set(writer["symbols"]) - set(reader["symbols"]))
        if missing and "default" not in reader:
            problems.append(f"{path}: enum symbols {missing} removed without an enum default")
    elif wk == "array":
        _check(writer["items"], reader["items"], wn, rn, f"{path}[]", problems, seen)
    elif wk == "map":
        _check(writer["values"], reader["values"], wn, rn, f"{path}{{}}", problems, seen)
    elif wk == "fixed" and writer["size"] != reader["size"]:
        problems.append(f"{path}: fixed size {writer['size']} became {reader['size']}")


def _same_name(writer: dict[str, Any], reader: dict[str, Any]) -> bool:
    return writer["name"] == reader["name"] or writer["name"] in reader.get("aliases", [])
