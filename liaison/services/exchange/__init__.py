"""Exercise data exchange: data sets uploaded into an exercise, and the comparisons run on them.

An officer uploads a list of HS-code prefixes or a file of declarations (CSV or XLSX). The file
is sealed into the attachment store as it arrives (``DatasetUpload``, the same streaming AEAD
and store as attachments), then read by ``liaison.exchange.parsing``: a file with any bad row is
kept as *rejected*, its report readable, and no comparison uses it. Checked rows are sealed
beside the file, so a comparison reads them back quickly. Everything is sealed under the data
key of the exercise's first room: shredding the exercise destroys it with the conversation.

A comparison (HS-prefix overlap of two lists, or exports mirrored against imports) stores its
result sealed too, records an audit event, and posts a system message with the summary into
that room, in English and Chinese, so both sides see it live. A comparison over many rows runs
as a background job and shows its progress on its page.

The package holds one module per concern (sealing, data sets, results, comparisons, the
background job, the room's message, downloads, hand-over); callers import from the package itself.
"""

from liaison.services.exchange.announcements import SUMMARY_LANGUAGES, summary_text
from liaison.services.exchange.comparisons import (
    list_comparisons,
    read_comparison,
    run_list_comparison,
    run_mirror_comparison,
)
from liaison.services.exchange.datasets import (
    DatasetResult,
    DatasetUpload,
    clean_kind,
    dataset_report,
    dataset_rows,
    list_datasets,
    start_dataset_upload,
    upload_dataset,
)
from liaison.services.exchange.downloads import ResultFile, export_comparison
from liaison.services.exchange.handover import (
    HANDOVER_FORMAT,
    HANDOVER_VERSION,
    RECIPIENT_MAX_CHARS,
    hand_over_comparison,
)
from liaison.services.exchange.results import RESULT_FORMAT, ComparisonRun, result_document
from liaison.services.exchange.sealing import (
    ExchangeContentDamaged,
    ExchangeContentGone,
    background_rows,
    bulk_work,
    key_room,
    limits,
    max_upload_bytes,
)

__all__ = [
    "HANDOVER_FORMAT",
    "HANDOVER_VERSION",
    "RECIPIENT_MAX_CHARS",
    "RESULT_FORMAT",
    "SUMMARY_LANGUAGES",
    "ComparisonRun",
    "DatasetResult",
    "DatasetUpload",
    "ExchangeContentDamaged",
    "ExchangeContentGone",
    "ResultFile",
    "background_rows",
    "bulk_work",
    "clean_kind",
    "dataset_report",
    "dataset_rows",
    "export_comparison",
    "hand_over_comparison",
    "key_room",
    "limits",
    "list_comparisons",
    "list_datasets",
    "max_upload_bytes",
    "read_comparison",
    "result_document",
    "run_list_comparison",
    "run_mirror_comparison",
    "start_dataset_upload",
    "summary_text",
    "upload_dataset",
]
