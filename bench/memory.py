"""Peak resident memory of processes while something runs, sampled from /proc."""

import threading
from pathlib import Path

SAMPLE_INTERVAL_S = 0.05


def _status_kb(pid: int, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def _reset_peak(pid: int) -> bool:
    """Reset the kernel's high-water mark (VmHWM); False where we may not."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class PeakRss:
    """The highest RSS (MB) each process reached, by name.

    Samples VmRSS every 50 ms; where the kernel's high-water mark could be reset at the start,
    it is read at the end as well, so a spike shorter than the interval still counts.
    """

    def __init__(self, pids: dict[str, int]) -> None:
        self._pids = pids
        self.peak_mb: dict[str, float] = dict.fromkeys(pids, 0.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._exact: set[str] = set()

    def _record(self, name: str, kb: int | None) -> None:
        if kb is not None:
            self.peak_mb[name] = max(self.peak_mb[name], kb / 1024)

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL_S):
            for name, pid in self._pids.items():
                self._record(name, _status_kb(pid, "VmRSS"))

    def __enter__(self) -> "PeakRss":
        self._exact = {name for name, pid in self._pids.items() if _reset_peak(pid)}
        for name, pid in self._pids.items():
            self._record(name, _status_kb(pid, "VmRSS"))
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        for name in self._exact:
            self._record(name, _status_kb(self._pids[name], "VmHWM"))


def rss_mb(pid: int) -> float:
    """The process's resident memory now."""
    kb = _status_kb(pid, "VmRSS")
    return 0.0 if kb is None else kb / 1024
