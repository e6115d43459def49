"""Why a device's push was not delivered, kept beside its outcome in the durable record.

A batch's row (pushfan.outcome_record) packs its device ids grouped by outcome; `reasons` is
then one byte per packed id, 0 for none, n for `reason_names[n - 1]` (the provider's reason,
e.g. "Unregistered", or the HTTP status when it gave none). Only batches with at least one
reason carry the column: a fully delivered batch stores NULL and costs nothing here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pushfan.outcomes import FINAL_OUTCOMES, Outcome

MAX_NAMES = 255  # one byte per device; further distinct reasons share the last name
OVERFLOW = "other"


def reason_args(
    outcomes: Mapping[Outcome, Sequence[int]], reason_of: Mapping[int, str]
) -> tuple[bytes | None, list[str] | None]:
    """The `reasons` bytes and `reason_names` for ids packed in FINAL_OUTCOMES order
    (pushfan.progress.outcome_args), or (None, None) when no recorded device has a reason."""
    if not reason_of:
        return None, None
    names: dict[str, int] = {}
    codes = bytearray()
    for outcome in FINAL_OUTCOMES:
        for device in outcomes.get(outcome, ()):
            reason = reason_of.get(device)
            if reason is None:
                codes.append(0)
                continue
            code = names.get(reason)
            if code is None:
                if len(names) >= MAX_NAMES - 1:
                    reason = OVERFLOW
                code = names.setdefault(reason, len(names) + 1)
            codes.append(code)
    if not names:
        return None, None
    return bytes(codes), list(names)


def reason_at(reasons: bytes | None, names: Sequence[str] | None, index: int) -> str | None:
    """The reason of the `index`-th packed id of a row, if it has one."""
    if reasons is None or names is None or index >= len(reasons):
        return None
    code = reasons[index]
    return names[code - 1] if code else None
