"""The benchmark pipeline: cached stages (data, base LM, π_sft, judge LM), the simulated
annotator and the judge that holds the gold reward r*.

- :mod:`.config` — :class:`BenchmarkConfig`, the settings every embedded benchmark shares;
- :mod:`.cache` — the content-addressed stage cache;
- :mod:`.stages` — :func:`prepare`: build (or load) everything a benchmark needs;
- :mod:`.judge` — :class:`Judge`, the only holder of r*;
- :mod:`.annotator` — preference data drawn from r* by a simulated annotator.
"""
