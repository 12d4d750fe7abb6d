"""The results store (see :mod:`harness.store.core`): schema and migrations, run leases and
heartbeats, writing runs, reading runs as frames. Layer: harness.store — below harness.analysis,
beside harness.pipeline (neither imports the other); it imports harness.specs and the ground
floor only.

Its modules: :mod:`~harness.store.schema` (tables, version), :mod:`~harness.store.records`
(RunRecord, Claim), :mod:`~harness.store.engines` (``--store`` locations and engines),
:mod:`~harness.store.base` (connections), :mod:`~harness.store.migrations`,
:mod:`~harness.store.leases` (claims, orphans, heartbeats), :mod:`~harness.store.writing`,
:mod:`~harness.store.reading`, :mod:`~harness.store.core` (:class:`Store`) and
:mod:`~harness.store.heartbeat` (the thread that beats for a running run).
"""

from harness.store.core import Store
from harness.store.engines import BUSY_TIMEOUT_S, SUPPORTED_STORES, is_empty_file, is_url
from harness.store.heartbeat import HEARTBEAT_S, Heartbeat
from harness.store.leases import STALE_AFTER_S
from harness.store.records import Claim, RunRecord
from harness.store.schema import LEGACY_PREFIX, RUN_FRAME_COLUMNS, SCHEMA_VERSION, STATUSES

__all__ = [
    "BUSY_TIMEOUT_S",
    "HEARTBEAT_S",
    "LEGACY_PREFIX",
    "RUN_FRAME_COLUMNS",
    "SCHEMA_VERSION",
    "STALE_AFTER_S",
    "STATUSES",
    "SUPPORTED_STORES",
    "Claim",
    "Heartbeat",
    "RunRecord",
    "Store",
    "is_empty_file",
    "is_url",
]
