"""The worker thread a large mirror comparison runs on until a job runner exists."""

from __future__ import annotations

import logging
import threading

from django.db import connection, transaction
from django.utils import timezone

from liaison.exchange import comparison as compare
from liaison.models import (
    Comparison,
    ComparisonStatus,
)
from liaison.services.exchange.announcements import announce
from liaison.services.exchange.results import finish_comparison, mirror_document, seal_result

logger = logging.getLogger(__name__)


_workers: dict[int, threading.Thread] = {}
_workers_lock = threading.Lock()


def start_worker(comparison_id: int) -> None:
    """Run the comparison on its own thread once the row that names it has committed."""

    def start() -> None:
        thread = threading.Thread(
            target=_work, args=(comparison_id,), name=f"comparison-{comparison_id}", daemon=True
        )
        with _workers_lock:
            _workers[comparison_id] = thread
        thread.start()

    transaction.on_commit(start)


def wait_for_comparison(comparison_id: int, timeout: float = 60.0) -> bool:
    """Wait for a background comparison's thread (tests, the benchmark); True once it ended."""
    with _workers_lock:
        thread = _workers.get(comparison_id)
    if thread is None:
        return True
    thread.join(timeout)
    return not thread.is_alive()


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
                finish_comparison(comparison, sealed, document["summary"])
                announce(comparison, "done")
        except BaseException:
            sealed.blob.abort()
            raise
    except Exception as error:
        logger.exception("comparison %s failed", comparison_id)
        _fail_comparison(comparison_id, error)
    finally:
        with _workers_lock:
            _workers.pop(comparison_id, None)
        connection.close()


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


# --- telling the room ---------------------------------------------------------------------------------
