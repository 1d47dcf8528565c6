"""What each reason code the compliance check or the pre-flight gives means, in words."""

from __future__ import annotations

REASON_LABELS: dict[str, str] = {
    "invalid_number": "not a valid phone number",
    "out_of_jurisdiction": "outside the jurisdictions we may call",
    "erased": "number erased at the person's request",
    "suppressed": "on the suppression list",
    "registry_stale": "DND registry out of date",
    "dnd_fully_blocked": "on the DND registry (fully blocked)",
    "dnd_category_blocked": "on the DND registry (this category blocked)",
    "no_consent": "no explicit consent on record",
    "outside_calling_hours": "outside the calling window",
    "cli_series_mismatch": "caller ID of the wrong series for this purpose",
    "cli_not_owned": "caller ID not owned by the sender",
    "cli_pool_refused": "every caller ID in the pool is refused",
    "frequency_cap": "daily call limit reached",
    "check_unavailable": "the compliance check could not run",
}


def reason_label(code: str) -> str:
    """The words for a reason code; a code without words shows as itself."""
    return REASON_LABELS.get(code, code)
