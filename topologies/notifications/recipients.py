"""The fresh stage's stream-table join: every request meets its recipient's latest account, from `user.registered`.

``user.registered`` (the whole account, written on registration and again on each display name change) and
``notification.requested`` are both keyed by user id, with six partitions and one partitioner
(`jobstream.partitioning`), so partition i of one holds the same users as partition i of the other and the
recipient's account is in the state of the very partition its request is read from. The state (Quix, RocksDB,
scoped to the message key) keeps one entry, ``account``: the email and display name of the latest event.

What a request gets, the rest of it left as it came:

- ``params["recipient_name"]``: the display name in state; without an account, whatever the request carried.
  Templates greet by it, or neutrally ("Hello,") without one (`topologies.notifications.templates.greeting`).
- ``address``: the request's own when it has one (explicit addresses, and ``contact_email`` of older applications).
  An empty address on ``email`` means "the recipient's own email" (what the acceptance topology sends): the account's
  email; without an account (the outbox relay lags, or the user predates the topic) the request goes as ``push`` to
  the recipient's id, as applications without an email always did, rather than wait or fail. An empty ``push``
  address is the recipient's id too.

A request whose message key is not its recipient id is enriched from nothing: the state under that key is
another user's. The retry stage reads what the fresh stage re-produced, enriched already, and keeps no state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from quixstreams import State

from jobstream.dead_letter import Decoded
from schemas.avro import Record
from schemas.topics import USER_REGISTERED

_ACCOUNT = "account"


@dataclass(frozen=True)
class Account:
    """What notifications need of a user: where to write and what to call them."""

    email: str
    display_name: str


def account_of(registered: Record) -> Account:
    return Account(email=registered["email"], display_name=registered["display_name"])


def enrich(request: Record, account: Account | None) -> Record:
    """`request` with its recipient's name in params and its address resolved (see the module docstring)."""
    params = dict(request["params"])
    if account is not None and account.display_name.strip():
        params["recipient_name"] = account.display_name
    channel, address = request["channel"], request["address"]
    if not address and channel == "email":
        channel, address = ("email", account.email) if account is not None else ("push", request["recipient_id"])
    elif not address and channel == "push":
        address = request["recipient_id"]
    return {**request, "channel": channel, "address": address, "params": params}


class RecipientDirectory:
    """The stateful step: a user event updates the account; a request comes out enriched, a user event not at all.

    Use it as ``sdf.apply(guarded(directory), stateful=True, metadata=True)``; `on_unknown` is called for each request
    enriched without an account (a metric of the outbox's lag).
    """

    def __init__(self, on_unknown: Callable[[], None]) -> None:
        self._on_unknown = on_unknown

    def __call__(
        self, value: Decoded, key: Any, timestamp: int, headers: Any, state: State[str, Any]
    ) -> Decoded | None:
        if value.topic == USER_REGISTERED:
            registered = account_of(value.record)
            state.set(_ACCOUNT, {"email": registered.email, "display_name": registered.display_name})
            return None
        request = value.record
        stored = state.get(_ACCOUNT) if key == str(request["recipient_id"]).encode() else None
        account = None if stored is None else Account(**stored)
        if account is None:
            self._on_unknown()
        return Decoded(value.topic, enrich(request, account), value.raw)
