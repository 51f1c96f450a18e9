"""Keyset paging: `?limit=` and an opaque `?cursor=` naming the last row of the previous page by its sort time and
id, so a page costs an index range however deep it is, and rows arriving meanwhile neither repeat nor vanish."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.requests import Request

from gateway.http.errors import InvalidField
from gateway.http.validation import query_int, uuid_param
from jobstream.clock import db_utc

_MAX_CURSOR_CHARS = 200


@dataclass(frozen=True)
class Page:
    """At most `limit` rows, after the row with this sort time and id (None: from the first row)."""

    limit: int
    after: tuple[datetime, str] | None = None


def page_from(request: Request, *, max_limit: int = 50) -> Page:
    limit = query_int(request, "limit", minimum=1, maximum=max_limit, default=20)
    raw = request.query_params.get("cursor")
    if raw is None:
        return Page(limit)
    refused = InvalidField("cursor", "must be a next_cursor this API returned, unchanged")
    if len(raw) > _MAX_CURSOR_CHARS or not raw.isascii():
        raise refused
    try:
        at, row_id = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        moment = db_utc(datetime.fromisoformat(at))
    except (ValueError, TypeError, binascii.Error):
        raise refused from None
    if not isinstance(row_id, str):
        raise refused
    try:
        return Page(limit, (moment, uuid_param(row_id, "cursor")))
    except InvalidField:
        raise refused from None


def next_cursor(items: Sequence[dict[str, Any]], page: Page, *, at: str, row_id: str) -> str | None:
    """The cursor of the page after `items`, or None when `items` is the last page."""
    if len(items) < page.limit:
        return None
    last = items[-1]
    payload = json.dumps([last[at], last[row_id]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")
