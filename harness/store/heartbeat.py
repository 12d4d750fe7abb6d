"""A running run's sign of life: its store row's ``heartbeat_at`` renewed every few seconds, so that
another host can tell a run in progress from one whose machine died (``Store.interrupt_orphans``).

The beat comes from a thread of its own with a store connection of its own: nothing the optimizer
can reach (``ctx.log`` included) leads to the store, which holds other runs' gold-scored samples.

Layer: harness.store (imports its own modules only)."""

from __future__ import annotations

import threading
from pathlib import Path

from harness.store.core import Store

#: seconds between beats; the store presumes a run on another host dead after STALE_AFTER_S
HEARTBEAT_S = 30.0


class Heartbeat:
    """Beats for ``run_id`` between :meth:`start` and :meth:`stop`. A beat that
    fails (a full disk, the server gone) stops the beating and never fails the run: the run's
    own writes report such faults."""

    def __init__(self, store_location: str | Path, run_id: str, every_s: float = HEARTBEAT_S):
        self.store_location, self.run_id, self.every_s = store_location, run_id, every_s
        self.beats = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{run_id}", daemon=True)

    def _beat(self) -> None:
        try:
            with Store(self.store_location) as store:
                while not self._stop.wait(self.every_s):
                    store.heartbeat(self.run_id)
                    self.beats += 1
        except Exception:  # noqa: BLE001 — see the class docstring
            return

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
