"""Analysis of stored runs, as frames and numbers (rendering is harness.reports'): confidence
intervals (:mod:`~harness.analysis.intervals`), tests against a baseline
(:mod:`~harness.analysis.significance`), the leaderboard frame
(:mod:`~harness.analysis.leaderboard`, with :mod:`~harness.analysis.columns`,
:mod:`~harness.analysis.labels` and :mod:`~harness.analysis.comparisons`), Gao et al.'s fits
(:mod:`~harness.analysis.fits`) and trajectory and curve frames
(:mod:`~harness.analysis.trajectories`, :mod:`~harness.analysis.seed_curves`).

Layer: harness.analysis — above harness.store, below harness.reports; it imports its own
modules, harness.store, harness.specs and the ground floor, never harness.reports, running or cli.
"""
