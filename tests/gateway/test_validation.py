"""Field checks in isolation: pure logic, no services."""

import re

import pytest
from starlette.requests import Request

from gateway.accounts.routes import LOGIN_FIELDS, PROFILE_FIELDS, REFRESH_FIELDS, REGISTER_FIELDS
from gateway.applications.routes import APPLICATION_FIELDS, STAGE_FIELDS
from gateway.http.errors import InvalidField
from gateway.http.validation import (
    MULTILINE_PATTERN,
    SINGLE_LINE_PATTERN,
    Text,
    check_object,
    object_schema,
    query_int,
)
from gateway.jobs.routes import JOB_FIELDS

pytestmark = pytest.mark.unit

SINGLE_LINE = Text(1, 200, multiline=False)
FREE_TEXT = Text(1, 200, multiline=True)
# One of each kind the rules name: C0 (NUL, BEL, ESC, CR, LF, TAB), DEL, C1 (first, NEL, last), U+2028, U+2029.
CONTROLS = ["\x00", "\x07", "\x1b", "\r", "\n", "\t", "\x7f", "\x80", "\x85", "\x9f", "\u2028", "\u2029"]


@pytest.mark.parametrize("control", CONTROLS)
def test_a_single_line_field_refuses_every_control_character_naming_the_field(control):
    with pytest.raises(InvalidField) as refused:
        SINGLE_LINE.check("title", f"Dev{control}Bcc: x@evil.io")

    assert (refused.value.status, refused.value.field) == (422, "title")
    assert f"U+{ord(control):04X}" in refused.value.message


@pytest.mark.parametrize("control", [c for c in CONTROLS if c not in "\t\n\r"])
def test_free_text_refuses_control_characters_other_than_tab_and_line_breaks(control):
    with pytest.raises(InvalidField) as refused:
        FREE_TEXT.check("cover_letter", f"Dear team,{control}")

    assert refused.value.field == "cover_letter"


def test_free_text_keeps_tabs_and_line_breaks_and_one_line_text_keeps_ordinary_unicode():
    letter = "Dear team,\r\n\r\n\tI apply.\nRegards"

    assert FREE_TEXT.check("cover_letter", letter) == letter
    assert SINGLE_LINE.check("title", "Développeur · 開発者 — Lisboa") == "Développeur · 開発者 — Lisboa"


def test_the_documented_patterns_accept_and_refuse_what_the_checks_do():
    # The OpenAPI patterns are ECMA-262; these two use only \uXXXX ranges, which Python's re reads the same way.
    single, multi = re.compile(SINGLE_LINE_PATTERN), re.compile(MULTILINE_PATTERN)
    for control in CONTROLS:
        assert single.match(f"a{control}b") is None
        assert (multi.match(f"a{control}b") is not None) == (control in "\t\n\r")
    assert single.match("plain title") and multi.match("line\nbreak")


def _request(query: str) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "query_string": query.encode(), "headers": []})


@pytest.mark.parametrize("raw", ["²", "%C2%B2", "%D9%A3", "+1", "-1", "%201", "1_000", "1.0", "", "9" * 5_000, "51"])
def test_a_query_integer_takes_only_ascii_digits_within_its_bounds(raw):
    with pytest.raises(InvalidField) as refused:
        query_int(_request(f"limit={raw}"), "limit", minimum=1, maximum=50, default=20)

    assert (refused.value.status, refused.value.field) == (422, "limit")
    assert refused.value.message == "must be an integer from 1 to 50"


def test_a_query_integer_defaults_when_absent_and_parses_plain_digits():
    assert query_int(_request(""), "limit", minimum=1, maximum=50, default=20) == 20
    assert query_int(_request(""), "salary_min", minimum=0, maximum=10) is None
    assert query_int(_request("limit=007"), "limit", minimum=1, maximum=50, default=20) == 7


DECLARED_BODIES = {
    "job": JOB_FIELDS,
    "application": APPLICATION_FIELDS,
    "stage": STAGE_FIELDS,
    "register": REGISTER_FIELDS,
    "login": LOGIN_FIELDS,
    "refresh": REFRESH_FIELDS,
    "profile": PROFILE_FIELDS,
}
DECLARED_FIELDS = [
    pytest.param(field, id=f"{body}.{name}")
    for body, fields in DECLARED_BODIES.items()
    for name, field in fields.items()
]


@pytest.mark.parametrize("field", DECLARED_FIELDS)
def test_each_documented_bound_is_the_bound_the_gateway_checks(field):
    schema = field.spec.json_schema()
    check = field.spec.check
    if schema.get("type") == "string" and "format" not in schema:  # emails and URLs: bounds plus a shape
        longest = "a" * schema["maxLength"]
        if getattr(field.spec, "pattern", None) is None:  # a pattern of its own refuses "aaa..."
            assert check("f", longest) == longest
        with pytest.raises(InvalidField):
            check("f", longest + "a")
        if schema["minLength"] > 1:
            with pytest.raises(InvalidField):
                check("f", "a" * (schema["minLength"] - 1))
    if schema.get("type") == "integer":
        assert (check("f", schema["minimum"]), check("f", schema["maximum"])) == (schema["minimum"], schema["maximum"])
        for outside in (schema["minimum"] - 1, schema["maximum"] + 1):
            with pytest.raises(InvalidField):
                check("f", outside)
    if "enum" in schema:
        assert [check("f", option) for option in schema["enum"]] == schema["enum"]
        with pytest.raises(InvalidField):
            check("f", "not-" + schema["enum"][0])
    if schema.get("type") == "array":
        with pytest.raises(InvalidField):
            check("f", ["a"] * (schema["maxItems"] + 1))
    documented = field.json_schema()
    nullable = "null" in documented.get("type", []) or {"type": "null"} in documented.get("anyOf", [])
    assert nullable == field.nullable


def test_a_documented_body_requires_what_the_check_requires():
    minimal = {"title": "T", "description": "D", "location": "L"}
    assert object_schema(JOB_FIELDS)["required"] == list(minimal)
    assert check_object(minimal, JOB_FIELDS) == minimal
    for name in minimal:
        with pytest.raises(InvalidField) as refused:
            check_object({k: v for k, v in minimal.items() if k != name}, JOB_FIELDS)
        assert (refused.value.field, refused.value.code) == (name, "missing_field")
    assert object_schema(JOB_FIELDS, partial=True)["minProperties"] == 1
    with pytest.raises(InvalidField):
        check_object({}, JOB_FIELDS, partial=True)
