"""Mixed precision: bf16 matmuls, fp32 everything that is a probability, a ratio or a loss.

``--precision bf16`` (PPO's runs and ``harness bench ppo``) wraps the forward passes in
:func:`torch.autocast`: matmuls, attention and the layers between them run in bfloat16 while the
master weights, AdamW's state and the gradients stay float32. The LM and value heads run in
float32 on the float32 hidden state, outside autocast (:func:`harness.lm.lm_logits`,
:func:`harness.lm.critic_values`), and scores are cast to float32, so log-softmax, log-probs, KL,
ratios, GAE, advantages and losses are float32, as mixed-precision RLHF does it. Backward passes run outside
autocast (PyTorch's recommendation: autograd replays each op in the dtype its forward used).

bf16 keeps float32's exponent range (no loss scaling is needed, unlike fp16) but only 8 bits of
mantissa: the hidden states carry its rounding, so log-probs differ from fp32's by a few
hundredths of a nat -- the same in the rollout's and the update's forward, so ratios start at 1.
"""

from __future__ import annotations

import torch

#: the choices of ``--precision``
PRECISIONS = ("fp32", "bf16")


def autocast(device: torch.device | str, precision: str) -> torch.autocast:
    """The context a forward pass runs in at ``precision`` on ``device`` (a no-op for fp32)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    device_type = torch.device(device).type
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=precision == "bf16")


def compute_dtype(device: torch.device | str) -> torch.dtype:
    """The dtype matmuls run in here and now: bfloat16 inside an enabled :func:`autocast`, else float32."""
    device_type = torch.device(device).type
    return torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else torch.float32
