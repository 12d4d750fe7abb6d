"""Rendering stored results: leaderboard tables (:mod:`~harness.reports.leaderboard`, md, csv,
html, latex, with :mod:`~harness.reports.leaderboard_legends`), the fit table
(:mod:`~harness.reports.fit_table`), figures (:mod:`~harness.reports.plots`, with
:mod:`~harness.reports.plot_style`, :mod:`~harness.reports.figures` and
:mod:`~harness.reports.figure_files`), the HTML page (:mod:`~harness.reports.html_report`,
:mod:`~harness.reports.html_assets`), markdown reports (:mod:`~harness.reports.markdown`), safe
cell text (:mod:`~harness.reports.text`) and atomic file writes (:mod:`~harness.reports.files`).

Layer: harness.reports — above harness.analysis and harness.store, which it may import; never
harness.running or harness.cli.
"""
