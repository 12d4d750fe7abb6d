"""The LM operations the contract's default methods call — sampling, log-probs, the supervised
loss, preference items as rollouts — as one object the LM toolkit provides, so that the contract
defines their shape without importing the toolkit (the ground floor imports nothing above it).

:mod:`harness.lm` installs its implementation when it is imported (every runner, stage builder
and plugin that touches a model imports it); a :class:`~harness.api.TrainContext` takes the one
installed when it is built, unless its builder passes another (``toolkit=``). Part of the contract
(ground floor): imports nothing of the harness."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class LMToolkit:
    """The toolkit functions the contract calls (see :mod:`harness.lm` for each one's contract)."""

    sample_batch: Callable[..., Any]  # (model, tokenizer, prompts, settings, generator, *, stop_at_eos) -> Rollout
    sample_rollout: Callable[..., Any]  # (model, tokenizer, prompts, settings, generator, desc=None) -> Rollout
    model_log_probs: Callable[..., Any]  # (model, rollout, temperature) -> [B, Tr], differentiable
    response_log_probs: Callable[..., Any]  # (model, rollout, temperature) -> [B, Tr], no gradient
    response_nll: Callable[..., Any]  # (model, rollout) -> scalar loss
    items_rollout: Callable[..., Any]  # (tokenizer, items, device) -> (Rollout, ...)


_installed: LMToolkit | None = None


def install_toolkit(toolkit: LMToolkit) -> None:
    """Make ``toolkit`` the one the contract's defaults call (:mod:`harness.lm` does, on import)."""
    global _installed
    _installed = toolkit


def installed_toolkit() -> LMToolkit:
    """The installed toolkit; a clear error when :mod:`harness.lm` was never imported."""
    if _installed is None:
        raise RuntimeError("the LM toolkit is not loaded: import harness.lm (the harness's runner and stage builders do)")
    return _installed
