"""Running (layer 2): the one orchestrator that runs one resolved run spec (:mod:`.runner`),
where runs happen (:mod:`.workspace`), what training needs (:mod:`.training`), its evaluation
(:mod:`.evaluation`, :mod:`.checkpoints`), the proxy reward model it optimizes
(:mod:`.reward_fit`), sweeps of many (:mod:`.sweep`, :mod:`.sweep_file`, :mod:`.sweep_time`,
:mod:`.sweep_reports`), on Ray (:mod:`.executors`) or data-parallel (:mod:`.distributed`).
What one run is, and what makes it reproducible, live in :mod:`harness.specs`.

Modules here may import reports, analysis, the store, the pipeline, the specs, the toolkits and
the ground floor — never harness.cli — and no module here imports one that imports it back.
"""
