"""Domain models, one module per domain, re-exported here."""

from liaison.models.accounts import Agency, RecoveryCode, Role, User, UserSession
from liaison.models.attachments import Attachment
from liaison.models.attention import (
    REACTIONS,
    Acknowledgement,
    AckRequest,
    Mention,
    MentionVia,
    Reaction,
    RoomPreference,
)
from liaison.models.audit import AuditEvent
from liaison.models.exchange import (
    Comparison,
    ComparisonKind,
    ComparisonStatus,
    Dataset,
    DatasetKind,
    DatasetStatus,
)
from liaison.models.exercises import (
    Exercise,
    ExerciseStatus,
    GroupRole,
    HistoryVisibility,
    Invitation,
    Membership,
    Room,
)
from liaison.models.exports import AuditExport, AuditExportStatus
from liaison.models.jobs import JobWorker, PeriodicJob
from liaison.models.keys import RoomKey
from liaison.models.messages import (
    Message,
    MessageKind,
    MessageRevision,
    Presence,
    ReadMarker,
)

__all__ = [
    "REACTIONS",
    "AckRequest",
    "Acknowledgement",
    "Agency",
    "Attachment",
    "AuditEvent",
    "AuditExport",
    "AuditExportStatus",
    "Comparison",
    "ComparisonKind",
    "ComparisonStatus",
    "Dataset",
    "DatasetKind",
    "DatasetStatus",
    "Exercise",
    "ExerciseStatus",
    "GroupRole",
    "HistoryVisibility",
    "Invitation",
    "JobWorker",
    "Membership",
    "Mention",
    "MentionVia",
    "Message",
    "MessageKind",
    "MessageRevision",
    "PeriodicJob",
    "Presence",
    "Reaction",
    "ReadMarker",
    "RecoveryCode",
    "Role",
    "Room",
    "RoomKey",
    "RoomPreference",
    "User",
    "UserSession",
]
