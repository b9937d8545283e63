"""Peak resident memory of a process over a block of work, for the benchmarks."""

from __future__ import annotations

import gc
import threading


def status_kib(pid: int | str, field: str) -> int | None:
    """A ``kB`` field of ``/proc/<pid>/status`` (``pid`` may be ``"self"``)."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class PeakRss:
    """Peak RSS growth over a ``with`` block: VmHWM after a reset (Linux >= 4.0, same user),
    cross-checked by sampling VmRSS. ``pid=None`` measures nothing (``growth_mib`` is None)."""

    def __init__(self, pid: int | str | None = "self", *, interval: float = 0.005) -> None:
        self.pid = pid
        self.interval = interval
        self.baseline_kib = 0
        self.sampled_kib = 0
        self.hwm_kib: int | None = None
        self.method = "not measured (no process id)" if pid is None else "sampled VmRSS"
        self._hwm_reset = False
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.sampled_kib = max(self.sampled_kib, status_kib(self.pid, "VmRSS") or 0)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRss:
        if self.pid is None:
            return self
        if self.pid == "self":
            gc.collect()
        self.baseline_kib = status_kib(self.pid, "VmRSS") or 0
        self.sampled_kib = self.baseline_kib
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as handle:
                handle.write("5")
            self._hwm_reset = True
            self.method = "VmHWM after clear_refs, and sampled VmRSS"
        except OSError:
            self._hwm_reset = False
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._sampler is None:
            return
        self._stop.set()
        self._sampler.join()
        if self._hwm_reset:
            self.hwm_kib = status_kib(self.pid, "VmHWM")

    @property
    def growth_mib(self) -> float | None:
        if self.pid is None:
            return None
        peak = max(self.sampled_kib, self.hwm_kib or 0)
        return max(0, peak - self.baseline_kib) / 1024
