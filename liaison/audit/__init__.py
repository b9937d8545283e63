"""The tamper-evident audit log (DESIGN.md section 5): chain, verification, signed checkpoints,
transcripts, signed exports, the offline verifier and the auditors' workspace.

Import from here: ``from liaison import audit``; ``audit.record(...)``. The names below are
loaded on first use, so ``python -m liaison.audit.offline_verifier`` runs without Django.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from liaison.audit.chain import (
        GENESIS_HASH,
        HASHED_FIELDS,
        MESSAGE_LINK_VERSION,
        canonical,
        checkpoint_if_due,
        compute_hash,
        event_fields,
        message_link_hash,
        message_link_of,
        normalise_ip,
        record,
        record_denied,
        record_independently,
    )

__all__ = [
    "GENESIS_HASH",
    "HASHED_FIELDS",
    "MESSAGE_LINK_VERSION",
    "canonical",
    "checkpoint_if_due",
    "compute_hash",
    "event_fields",
    "message_link_hash",
    "message_link_of",
    "normalise_ip",
    "record",
    "record_denied",
    "record_independently",
]
_CHAIN_NAMES = frozenset(__all__)
_SUBMODULES = frozenset(
    {
        "chain",
        "checkpoints",
        "export",
        "offline_verifier",
        "signing",
        "transcripts",
        "verify",
        "workspace",
    }
)


def __getattr__(name: str) -> Any:
    if name in _CHAIN_NAMES:
        value = getattr(importlib.import_module("liaison.audit.chain"), name)
        globals()[name] = value  # later lookups skip this function
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"liaison.audit.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
