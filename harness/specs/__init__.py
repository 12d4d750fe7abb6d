"""Specs: what one run is (:class:`RunSpec`, a plain serialisable value, and its identity), what
makes a result reproducible (:mod:`.manifest`), and resolution (:mod:`.resolution`): names and
configs → run specs, each spec's plugins looked up once (:class:`RunPlan`).

Layer 6 (below the store and the pipeline, above the toolkits and the ground floor): modules
here import only harness.config, harness.errors, harness.api, harness.registry and other ground
modules — never the store, the pipeline, running or the CLI.
"""

# the module harness.specs.manifest keeps its name here: its function manifest() is imported from it
from harness.specs.manifest import allowed_cpus, git_state, harness_code_version, limit_torch_threads
from harness.specs.resolution import RunPlan, as_plan, make_plans, make_specs, resolve, spec_of
from harness.specs.run_spec import SPEC_VERSION, Component, EvaluationSettings, RunSpec

__all__ = [
    "SPEC_VERSION",
    "Component",
    "EvaluationSettings",
    "RunPlan",
    "RunSpec",
    "allowed_cpus",
    "as_plan",
    "git_state",
    "harness_code_version",
    "limit_torch_threads",
    "make_plans",
    "make_specs",
    "resolve",
    "spec_of",
]
