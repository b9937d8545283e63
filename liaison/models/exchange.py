"""Exercise data exchange: the data sets officers upload and the comparisons run on them.

Contents never sit here in plaintext. A data set's file, its checked rows and a comparison's
result are blobs in the attachment store, sealed under the data key of the exercise's first
room (``key_room``), so shredding the exercise's keys destroys them with its conversation; only
counts, kinds and parameters are columns.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class DatasetKind(models.TextChoices):
    PROHIBITED_LIST = "prohibited_list", _("Prohibited-import list")
    ALLOWED_LIST = "allowed_list", _("Allowed-export list")
    EXPORT_DECLARATIONS = "export_declarations", _("Export declarations")
    IMPORT_DECLARATIONS = "import_declarations", _("Import declarations")


class DatasetStatus(models.TextChoices):
    ACCEPTED = "accepted", _("Accepted")
    REJECTED = "rejected", _("Rejected (bad rows)")


class Dataset(models.Model):
    """One uploaded file of an exercise, checked row by row. A rejected one (any bad row) is
    kept so its report can be read, but no comparison uses it."""

    exercise = models.ForeignKey(
        "liaison.Exercise", on_delete=models.PROTECT, related_name="datasets"
    )
    kind = models.CharField(max_length=32, choices=DatasetKind.choices)
    status = models.CharField(max_length=16, choices=DatasetStatus.choices)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    key_room = models.ForeignKey("liaison.Room", on_delete=models.PROTECT, related_name="+")
    key_version = models.PositiveIntegerField()
    storage_name = models.CharField(max_length=200, unique=True)
    rows_storage_name = models.CharField(max_length=200, unique=True)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    file_format = models.CharField(max_length=8)  # csv, xlsx
    encoding = models.CharField(max_length=16, blank=True)  # a CSV's; blank for a workbook
    name_nonce = models.BinaryField()
    name_ciphertext = models.BinaryField()
    rows = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    # Which header of the file each field was read from (headers, not contents).
    columns = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["exercise_id", "-created_at", "-pk"]


class ComparisonKind(models.TextChoices):
    LIST = "list", _("List comparison")
    MIRROR = "mirror", _("Mirror comparison")


class ComparisonStatus(models.TextChoices):
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class Comparison(models.Model):
    """One run of a list or mirror comparison; its full result is a sealed blob."""

    exercise = models.ForeignKey(
        "liaison.Exercise", on_delete=models.PROTECT, related_name="comparisons"
    )
    kind = models.CharField(max_length=16, choices=ComparisonKind.choices)
    status = models.CharField(
        max_length=16, choices=ComparisonStatus.choices, default=ComparisonStatus.RUNNING
    )
    run_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Mirror comparisons: exports, imports and (optionally) the prohibited list.
    # List comparisons: allowed and prohibited.
    exports = models.ForeignKey(
        Dataset, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    imports = models.ForeignKey(
        Dataset, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    allowed = models.ForeignKey(
        Dataset, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    prohibited = models.ForeignKey(
        Dataset, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    weight_tolerance = models.FloatField(null=True, blank=True)
    hs_digits = models.PositiveSmallIntegerField(null=True, blank=True)
    progress = models.PositiveSmallIntegerField(default=0)  # percent, while running
    # Counts per outcome (no container numbers); for a list comparison {"overlap": n}.
    summary = models.JSONField(default=dict, blank=True)
    failure = models.CharField(max_length=200, blank=True)
    key_room = models.ForeignKey("liaison.Room", on_delete=models.PROTECT, related_name="+")
    key_version = models.PositiveIntegerField(null=True, blank=True)
    result_storage_name = models.CharField(max_length=200, blank=True)
    result_size = models.PositiveBigIntegerField(default=0)
    result_sha256 = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["exercise_id", "-created_at", "-pk"]


def stored_blob_names() -> Iterator[str]:
    """Every blob the exchange keeps in the attachment store (so the orphan sweep spares it)."""
    for name, rows_name in Dataset.objects.values_list("storage_name", "rows_storage_name"):
        yield name
        yield rows_name
    yield from (
        Comparison.objects.exclude(result_storage_name="")
        .values_list("result_storage_name", flat=True)
        .iterator()
    )
