"""The LM toolkit: what plugins and benchmarks use to build, load, sample, score and train
language models. Part of the public contract beside :mod:`harness.api`; import from ``harness.lm``
only (its submodules are internals).

Conventions everywhere: queries left-padded, responses right-padded after their first EOS (kept),
PAD outside the models' vocabulary and distinct from EOS, pure temperature sampling with log-probs
recomputed at logits / T. Models are any transformers decoder-only causal LM or sequence
classifier (GPT-2, Llama, ...): forwards go through their backbone (``base_model``) with explicit
position ids. Plain float32 GPT-2s (the embedded benchmarks' models, or a pretrained GPT-2 of the
default configuration) take a fast path that computes the same numbers as transformers.

Sampling
    :func:`sample_batch` (fast path; ``stop_at_eos``), :func:`sample_rollout` (any model, in chunks,
    with a progress bar), :func:`rollout_from_texts`, :func:`encode_prompts`
Log-probs and losses
    :func:`model_log_probs` (differentiable), :func:`response_log_probs` (no gradient, chunked),
    :func:`token_log_probs` (from logits), :func:`response_logits`, :func:`response_nll`
Batched forwards of several models (policy + critic)
    :func:`response_hidden`, :func:`lm_logits`, :func:`critic_values`, :func:`is_plain_gpt2`,
    :func:`can_be_critic` (a reward model usable as the policy's per-token critic)
Mixed precision
    :func:`autocast` (``--precision bf16``: bf16 matmuls, fp32 log-probs and losses), :data:`PRECISIONS`,
    :func:`compute_dtype`
Reward heads
    :class:`ClassifierReward`, :func:`classifier_scores`, :func:`lm_to_classifier` (any causal LM),
    :func:`fit_on_rankings`, :func:`all_pairs_loss`, :func:`plackett_luce_loss`, :func:`items_rollout`,
    :func:`best_of_groups` (the best row of each group of K)
Pretrained models (hub id or local ``save_pretrained`` folder; safetensors only; :class:`UsageError` if unusable)
    :func:`load_causal_lm`, :func:`load_sequence_classifier`, :func:`load_pretrained_tokenizer`,
    :func:`tokenizer_for_trainers` (a copy for TRL's trainers: PAD = EOS, no special tokens added)
    (left padding; adds its own ``<pad>`` when the tokenizer has none or pads with EOS),
    :func:`check_model_tokenizer` (vocabularies compatible, PAD never sampled)
Building the embedded benchmarks' models
    :func:`train_tokenizer`, :func:`load_tokenizer`, :class:`LMShape`, :func:`gpt2_config`,
    :func:`new_lm`, :func:`train_causal_lm`, :func:`mean_token_log_likelihood`
"""

from harness.api.toolkit import LMToolkit, install_toolkit
from harness.lm.build import (
    EOS,
    PAD,
    UNK,
    LMShape,
    TrainSettings,
    gpt2_config,
    lm_to_classifier,
    load_tokenizer,
    mean_token_log_likelihood,
    model_vocab_size,
    new_lm,
    train_causal_lm,
    train_tokenizer,
)
from harness.lm.fast_gpt2 import (
    can_be_critic,
    critic_values,
    is_plain_gpt2,
    lm_logits,
    model_log_probs,
    policy_logits,
    response_hidden,
    response_nll,
    sample_batch,
    StackedWeights,
    token_values,
)
from harness.lm.precision import PRECISIONS, autocast, compute_dtype
from harness.lm.pretrained import (
    check_model_tokenizer,
    load_causal_lm,
    load_pretrained_tokenizer,
    load_sequence_classifier,
    tokenizer_for_trainers,
)
from harness.lm.reward_heads import (
    ClassifierReward,
    all_pairs_loss,
    best_of_groups,
    classifier_scores,
    fit_on_rankings,
    items_rollout,
    plackett_luce_loss,
)
from harness.lm.rollouts import sample_rollout
from harness.lm.sampling import (
    encode_prompts,
    response_log_probs,
    response_logits,
    rollout_from_texts,
    sequence_inputs,
    token_log_probs,
)

__all__ = [
    "EOS", "PAD", "PRECISIONS", "UNK", "ClassifierReward", "autocast", "compute_dtype", "LMShape", "TrainSettings", "all_pairs_loss", "best_of_groups", "can_be_critic",
    "check_model_tokenizer", "classifier_scores", "critic_values", "encode_prompts", "fit_on_rankings", "gpt2_config",
    "is_plain_gpt2", "items_rollout", "lm_logits", "lm_to_classifier", "load_causal_lm", "load_pretrained_tokenizer", "tokenizer_for_trainers",
    "load_sequence_classifier", "load_tokenizer", "mean_token_log_likelihood", "model_log_probs", "model_vocab_size",
    "new_lm", "plackett_luce_loss", "policy_logits", "response_hidden", "response_log_probs", "response_logits",
    "response_nll", "rollout_from_texts", "sample_batch", "sample_rollout", "sequence_inputs", "StackedWeights", "token_log_probs",
    "token_values", "train_causal_lm", "train_tokenizer",
]  # fmt: skip

# The contract's default methods (Policy.sample, TrainContext.sample/log_probs/nll,
# PreferenceData.rollout) call these: harness.api defines their shape, this toolkit provides them.
install_toolkit(LMToolkit(sample_batch=sample_batch, sample_rollout=sample_rollout, model_log_probs=model_log_probs,
                          response_log_probs=response_log_probs, response_nll=response_nll, items_rollout=items_rollout))
