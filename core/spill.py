"""Say so when DuckDB had to spill past its memory limit: the limit held, but the work went to disk.

DuckDB writes what does not fit into files in its temp directory (`<home>/tmp`) and deletes them when the
work is done, so a thread samples the folder's size while a command runs and the command reports the peak.
"""

from __future__ import annotations

import threading
from pathlib import Path


class SpillWatch:
    def __init__(self, folder: Path, interval: float = 0.2):
        self.folder = folder
        self.interval = interval
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="spill-watch", daemon=True)

    def _size(self) -> int:
        try:
            # dbt's spill files, and those of our connections in their own folders (core/files.py spill_folder);
            # not the scratch copies of the exports
            spills = [*self.folder.glob("*"), *self.folder.glob("spill-*/*")]
            return sum(p.stat().st_size for p in spills if p.is_file())
        except FileNotFoundError:  # a file deleted between listing and stat, or no folder yet
            return 0

    def _sample(self) -> None:
        while True:
            self.peak_bytes = max(self.peak_bytes, self._size())
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> SpillWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> int:
        """Stop sampling; the peak size the folder reached, in bytes."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        return self.peak_bytes
