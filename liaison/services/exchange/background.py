"""Large mirror comparisons run as jobs (``services/jobs.py``): queued in the transaction that
records the run, so a comparison exists only with its job, and run again if the job worker
running it was killed (the comparison is still ``running`` then; a finished one is not redone).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone
from django_tasks import task

from liaison.exchange import comparison as compare
from liaison.models import (
    Comparison,
    ComparisonStatus,
)
from liaison.services.exchange.announcements import announce
from liaison.services.exchange.results import finish_comparison, mirror_document, seal_result

logger = logging.getLogger(__name__)


def queue_comparison(comparison_id: int) -> str:
    """Queue the comparison's job in the caller's transaction; the job's id."""
    return str(comparison_job.enqueue(comparison_id).id)


@task()
def comparison_job(comparison_id: int) -> dict[str, Any]:
    """The job behind a large ``run_mirror_comparison``."""
    _work(comparison_id)
    status = Comparison.objects.filter(pk=comparison_id).values_list("status", flat=True).first()
    return {"comparison": comparison_id, "status": status or "missing"}


def _work(comparison_id: int) -> None:
    try:
        comparison = Comparison.objects.select_related(
            "exercise", "key_room", "run_by", "exports", "imports", "prohibited"
        ).get(pk=comparison_id)
        if comparison.status != ComparisonStatus.RUNNING:  # already done: run once only
            return
        last = {"percent": 0}

        def progress(fraction: float) -> None:
            percent = min(99, int(fraction * 100))
            if percent >= last["percent"] + 5:
                last["percent"] = percent
                Comparison.objects.filter(pk=comparison_id).update(progress=percent)

        assert comparison.exports is not None
        assert comparison.imports is not None
        document = mirror_document(
            comparison.exports,
            comparison.imports,
            comparison.prohibited,
            comparison.weight_tolerance or compare.DEFAULT_WEIGHT_TOLERANCE,
            comparison.hs_digits or compare.DEFAULT_HS_DIGITS,
            progress,
        )
        sealed = seal_result(comparison.key_room, document)
        try:
            with transaction.atomic():
                current = Comparison.objects.select_for_update().get(pk=comparison_id)
                if current.status != ComparisonStatus.RUNNING:
                    # Another run (a retry of a worker thought dead) finished it meanwhile.
                    sealed.blob.abort()
                    return
                finish_comparison(comparison, sealed, document["summary"])
                announce(comparison, "done")
        except BaseException:
            sealed.blob.abort()
            raise
    except Exception as error:
        logger.exception("comparison %s failed", comparison_id)
        _fail_comparison(comparison_id, error)


def _fail_comparison(comparison_id: int, error: Exception) -> None:
    try:
        with transaction.atomic():
            comparison = (
                Comparison.objects.select_for_update()
                .select_related("exercise", "key_room", "run_by")
                .get(pk=comparison_id)
            )
            comparison.status = ComparisonStatus.FAILED
            comparison.finished_at = timezone.now()
            comparison.failure = (getattr(error, "code", "") or error.__class__.__name__)[:200]
            comparison.save(update_fields=["status", "finished_at", "failure"])
            announce(comparison, "failed")
    except Exception:
        logger.exception("comparison %s: its failure could not be recorded", comparison_id)
