"""A lean forward pass and KV-cache sampler for the harness's plain GPT-2 models: the same math
on the same weights as transformers' GPT-2 (tests/test_ppo.py checks both against it), without
its per-call overhead, and several models of one shape run as one batched computation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel

from harness.api.budget import charge_samples
from harness.lm.precision import compute_dtype
from harness.lm.sampling import encode_prompts, sample_responses, sequence_inputs, token_log_probs
from harness.rollout import Rollout

# =============================================================================================
# Models: sampling and per-token outputs
#
# Speed ([perf]): at this size transformers' GPT-2 forward spends ~2 ms per call on overhead
# (mask building, output classes, cache objects) beside ~5 ms of arithmetic, and the sampler pays
# it at every token. For plain GPT-2 models the functions below run the same math on the same
# weights directly (tests/test_ppo.py checks them against transformers), and run several models
# of one shape -- policy and critic, or policy, critic and π_ref -- as ONE batched computation
# with their weights stacked on a leading model axis: half the kernel calls, twice the work per
# call, which is what two cores need. Any other model goes through transformers / harness.lm.sampling.
# =============================================================================================


def is_plain_gpt2(model) -> bool:
    """A GPT-2 whose forward :func:`gpt2_hidden` reproduces: the embedded benchmarks' models, and
    a pretrained GPT-2 of the default configuration (its ``gelu_new`` is the model's own
    activation module, which the fast path calls; its dropout is off in eval mode)."""
    config, transformer = getattr(model, "config", None), getattr(model, "transformer", None)
    return (
        type(transformer).__name__ == "GPT2Model"
        # one 1/√d_head scale per layer: the stacked path takes layer i's scale from the first model
        and config.scale_attn_weights
        and not config.scale_attn_by_inverse_layer_idx
        and not config.reorder_and_upcast_attn
        and not config.add_cross_attention
        # the sampler's KV cache is float32 and the numbers are checked in float32 only
        and transformer.wte.weight.dtype == torch.float32
        and not model.training  # dropout is skipped below: [B]/[N] 8 keeps every model in eval mode
    )


def _signature(model) -> tuple:
    t = model.transformer
    return (t.wte.weight.shape, t.wpe.weight.shape, len(t.h), model.config.n_head, model.config.layer_norm_epsilon,
            type(t.h[0].mlp.act), t.h[0].mlp.c_fc.weight.shape)  # fmt: skip


def stackable(models: list) -> bool:
    """Plain GPT-2s of one shape: they can run as one batched computation."""
    return all(is_plain_gpt2(m) for m in models) and len({_signature(m) for m in models}) == 1


#: [perf] Weights held stacked by :class:`StackedWeights`: the ids of the models' own tensors → the
#: one tensor, with a leading model axis, whose slices they are.
_HELD: dict[tuple[int, ...], torch.Tensor] = {}


def _stack(tensors: list[torch.Tensor]) -> torch.Tensor:
    """``tensors`` (one per model) along a new leading model axis: the held tensor when
    :class:`StackedWeights` holds them, else a stacked copy."""
    if len(tensors) == 1:
        return tensors[0].unsqueeze(0)
    held = _HELD.get(tuple(map(id, tensors)))
    return torch.stack(tensors) if held is None else held


class StackedWeights:
    """Same-shape plain GPT-2s trained together (PPO's policy and critic), with each
    transformer-block weight held ONCE: one tensor with a leading model axis, whose slices the
    models' own parameters are (they share its storage, so the models always read the current
    weights). [perf] The batched forward then takes these tensors as they are, instead of stacking
    every weight at every forward and unbinding and accumulating every gradient at every backward
    (``harness bench ppo``, interleaved with the code before: PPO's update phase 5% faster at
    2×64, 1–2% at 4×256); the numbers are the same, bit for bit.

    Train :meth:`parameters`; :meth:`gradients` lists one model's gradients. Leaving the ``with``
    block gives every model weights of its own again. Models that cannot run stacked (not plain
    GPT-2s of one shape, or one model) are left as they are: their own parameters are trained."""

    def __init__(self, models: list):
        self.models = list(models)
        self._slot: dict[int, tuple[torch.nn.Parameter, int]] = {}  # id(model parameter) → (held tensor, model index)
        self._keys: list[tuple[int, ...]] = []
        if len(self.models) < 2 or not stackable(self.models):
            return
        for named in zip(*(m.transformer.h.named_parameters() for m in self.models)):
            members = [parameter for _, parameter in named]
            held = torch.nn.Parameter(torch.stack([p.detach() for p in members]), requires_grad=members[0].requires_grad)
            for index, parameter in enumerate(members):
                parameter.data = held.data[index]  # a view: optimizer steps on `held` update the model
                self._slot[id(parameter)] = (held, index)
            key = tuple(map(id, members))
            _HELD[key] = held
            self._keys.append(key)

    def parameters(self) -> list[torch.nn.Parameter]:
        """What to optimise: the held tensors, then every other parameter of the models."""
        held = {id(h): h for h, _ in self._slot.values()}
        return list(held.values()) + [p for m in self.models for p in m.parameters() if id(p) not in self._slot]

    def gradients(self, model) -> list[torch.Tensor]:
        """``model``'s gradients in its ``parameters()`` order (a held weight's: its slice of the
        held gradient), for per-network clipping."""
        grads = []
        for parameter in model.parameters():
            held, index = self._slot.get(id(parameter), (None, 0))
            grad = parameter.grad if held is None else (None if held.grad is None else held.grad[index])
            if grad is not None:
                grads.append(grad)
        return grads

    def release(self) -> None:
        """Every model's parameters get storage of their own (the current values); nothing is held."""
        for key in self._keys:
            _HELD.pop(key, None)
        for model in self.models:
            for parameter in model.parameters():
                if id(parameter) in self._slot:
                    parameter.data = parameter.data.clone()
        self._slot.clear()
        self._keys.clear()

    def __enter__(self) -> StackedWeights:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _layer_norm(x: torch.Tensor, norms: list) -> torch.Tensor:
    """LayerNorm of ``x`` ``[M, ..., D]``, model m with ``norms[m]``'s affine parameters."""
    if len(norms) == 1:
        return F.layer_norm(x, x.shape[-1:], norms[0].weight, norms[0].bias, norms[0].eps)
    shape = (len(norms),) + (1,) * (x.dim() - 2) + x.shape[-1:]
    weight, bias = _stack([n.weight for n in norms]).view(shape), _stack([n.bias for n in norms]).view(shape)
    return torch.addcmul(bias, F.layer_norm(x, x.shape[-1:], eps=norms[0].eps), weight)


def _linear(x: torch.Tensor, convs: list) -> torch.Tensor:
    """GPT-2's Conv1D (x·W + b) per model: ``[M, N, in] → [M, N, out]``."""
    return torch.baddbmm(_stack([c.bias for c in convs]).unsqueeze(1), x, _stack([c.weight for c in convs]))


def _attend(blocks: list, x: torch.Tensor, keep: torch.Tensor, cache=None, start: int = 0, out_from: int = 0) -> torch.Tensor:
    """x + attention(ln_1(x)) for ``x`` ``[M, B, L, D]``; ``keep``: bool ``[B, 1, L_q, L_k]``.
    With ``cache = (K, V)`` (preallocated ``[M·B, H, L_max, D_h]``) this call's keys and values
    are written at ``start`` and the queries attend to everything cached so far. ``out_from``:
    positions before it are computed only as far as their keys and values (the last layer's
    other outputs there are never read)."""
    n_models, batch, length, width = x.shape
    attn = blocks[0].attn
    h = _layer_norm(x, [b.ln_1 for b in blocks]).view(n_models, -1, width)
    qkv = _linear(h, [b.attn.c_attn for b in blocks]).view(n_models * batch, length, 3, attn.num_heads, attn.head_dim)
    q, k, v = qkv.permute(2, 0, 3, 1, 4)
    if cache is not None:
        cache[0][:, :, start : start + length] = k
        cache[1][:, :, start : start + length] = v
        k, v = cache[0][:, :, : start + length], cache[1][:, :, : start + length]
    if out_from:
        q, x, keep = q[:, :, out_from:], x[:, :, out_from:], keep[:, :, out_from:]
    if n_models > 1:
        keep = keep.repeat(n_models, 1, 1, 1)
    if q.dtype == torch.bfloat16:  # --precision bf16
        out = _low_precision_attention(q, k, v, keep, attn.scaling)
    else:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, scale=attn.scaling)
    out = _linear(out.transpose(1, 2).reshape(n_models, -1, width), [b.attn.c_proj for b in blocks])
    return x + out.view(x.shape)


def _low_precision_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, keep: torch.Tensor, scale: float) -> torch.Tensor:
    """softmax(q·kᵀ·scale, masked) · v with both products in q's dtype (bf16) and the softmax in
    fp32. [perf] At these lengths (tens of tokens) torch's fused CPU attention is 4× slower in its
    bf16 backward than these two batched matmuls; fp32 keeps the fused kernel (its numbers)."""
    scores = torch.matmul(q, k.transpose(-1, -2)).float() * scale
    weights = scores.masked_fill(~keep, float("-inf")).softmax(-1)
    return torch.matmul(weights.to(q.dtype), v)


def _mlp(blocks: list, x: torch.Tensor) -> torch.Tensor:
    h = _layer_norm(x, [b.ln_2 for b in blocks]).view(x.size(0), -1, x.size(-1))
    h = blocks[0].mlp.act(_linear(h, [b.mlp.c_fc for b in blocks]))
    return x + _linear(h, [b.mlp.c_proj for b in blocks]).view(x.shape)


def _keep_mask(key_mask: torch.Tensor, query_start: int, n_queries: int) -> torch.Tensor:
    """Causal attention over real keys: ``[B, 1, n_queries, query_start + n_queries]``. A query
    that is itself padding also sees itself, so that no row is all-masked (its output is unused)."""
    n_keys = query_start + n_queries
    query_pos = torch.arange(query_start, n_keys, device=key_mask.device)
    key_pos = torch.arange(n_keys, device=key_mask.device)
    keep = (key_pos[None, :] <= query_pos[:, None])[None] & key_mask[:, None, :n_keys]
    keep = keep | (key_pos[None, :] == query_pos[:, None])[None]
    return keep[:, None]


def _embed(transformers: list, input_ids: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
    """Token + position embeddings per model: ``[M, B, L, D]`` (one lookup in the stacked tables)."""
    if len(transformers) == 1:
        t = transformers[0]
        return (t.wte(input_ids) + t.wpe(position_ids)).unsqueeze(0)
    offsets = torch.arange(len(transformers), device=input_ids.device).view(-1, 1, 1)
    vocab, n_positions = transformers[0].wte.weight.size(0), transformers[0].wpe.weight.size(0)
    tokens = F.embedding(input_ids + offsets * vocab, torch.cat([t.wte.weight for t in transformers]))
    return tokens + F.embedding(position_ids + offsets * n_positions, torch.cat([t.wpe.weight for t in transformers]))


def gpt2_hidden(
    models: list, input_ids: torch.Tensor, key_mask: torch.Tensor, position_ids: torch.Tensor, out_from: int = 0
) -> torch.Tensor:
    """The last hidden state (after ln_f, no dropout) of each model in ``models`` (plain GPT-2s
    of one shape) at positions ``out_from:``: ``[M, B, L − out_from, D]``."""
    transformers = [m.transformer for m in models]
    keep = _keep_mask(key_mask, 0, input_ids.size(1))
    x = _embed(transformers, input_ids, position_ids)
    n_layers = len(transformers[0].h)
    for i in range(n_layers):
        blocks = [t.h[i] for t in transformers]
        x = _mlp(blocks, _attend(blocks, x, keep, out_from=out_from if i == n_layers - 1 else 0))
    return _layer_norm(x, [t.ln_f for t in transformers])


def response_hidden(models: list, rollout: Rollout) -> list[torch.Tensor]:
    """[B] 1 each model sees query + response; its hidden state where response token t is
    predicted (column Tq − 1 + t), ``[B, Tr, D]`` per model. Same-shape plain GPT-2s run as one
    batched computation; others through transformers."""
    input_ids, attention, positions = sequence_inputs(rollout)
    start, width = rollout.query_ids.size(1) - 1, rollout.response_ids.size(1)
    if stackable(models):
        # The last token predicts nothing that is scored: drop it.
        hidden = gpt2_hidden(models, input_ids[:, :-1], attention[:, :-1].bool(), positions[:, :-1], out_from=start)
        return list(hidden.unbind(0))
    if len(models) > 1:
        return [h for m in models for h in response_hidden([m], rollout)]
    # base_model: the backbone of any transformers LM or classifier (GPT-2's .transformer, Llama's
    # .model); explicit position ids make left padding start every row at position 0
    out = models[0].base_model(input_ids=input_ids, attention_mask=attention, position_ids=positions).last_hidden_state
    return [out[:, start : start + width]]


def lm_logits(model, hidden: torch.Tensor, temperature: float) -> torch.Tensor:
    """[B] 5 logits / T, as they were sampled (the LM head: ``lm_head`` for GPT-2 and Llama).
    The head runs outside autocast in its weights' dtype (fp32 for our models, under
    ``--precision bf16`` too: on the hidden state cast back to fp32). bf16 logits (8 bits of mantissa: ±0.03 at a logit of 8) drown the small
    per-update changes PPO's ratio and KL measure; measured on sentiment, bf16 heads let two of
    three seeds drift to twice the KL."""
    head = model.get_output_embeddings()
    with _full_precision(hidden):
        return head(hidden.to(head.weight.dtype)).float() / temperature


def critic_values(critic, hidden: torch.Tensor) -> torch.Tensor:
    """V_t from the critic's value head, in the head's own dtype (outside autocast, as :func:`lm_logits`)."""
    with _full_precision(hidden):
        return critic.score(hidden.to(critic.score.weight.dtype)).squeeze(-1).float()


def _full_precision(tensor: torch.Tensor) -> torch.autocast:
    return torch.autocast(tensor.device.type, enabled=False)


def can_be_critic(classifier, policy) -> bool:
    """Whether sequence classifier ``classifier`` (a reward model) can serve as ``policy``'s
    per-token critic through :func:`response_hidden` and :func:`critic_values`: a transformers
    model with a backbone and a one-output ``score`` head, embedding the same vocabulary as the
    policy (it reads the policy's token ids). Its architecture may differ from the policy's."""
    score = getattr(classifier, "score", None)
    return (
        isinstance(classifier, PreTrainedModel)
        and classifier.base_model is not classifier
        and isinstance(score, torch.nn.Linear)
        and score.out_features == 1
        and classifier.get_input_embeddings().weight.shape[0] == policy.get_input_embeddings().weight.shape[0]
    )


def policy_logits(model, rollout: Rollout, temperature: float) -> torch.Tensor:
    """Logits / T predicting each response token, ``[B, Tr, V]`` (harness.lm.sampling.response_logits)."""
    return lm_logits(model, response_hidden([model], rollout)[0], temperature)


def token_values(critic, rollout: Rollout) -> torch.Tensor:
    """V_t read where the policy's logits for response token t are (before token t): ``[B, Tr]``."""
    return critic_values(critic, response_hidden([critic], rollout)[0])


def device_generator(generator: torch.Generator | None, device: torch.device) -> torch.Generator | None:
    """A generator on ``device`` for ``torch.multinomial``: ``generator`` itself when it lives there
    (always on the CPU, so CPU numbers never change), else a generator seeded with one draw from it.
    Runs keep one CPU generator per seed; on CUDA each sampling call then draws on the GPU, seeded
    by the run's generator, with no transfer per token."""
    if generator is None or generator.device.type == device.type:
        return generator
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    return torch.Generator(device=device).manual_seed(seed)


@torch.no_grad()
def gpt2_sample(
    model, query_ids, query_mask, settings, eos_id: int, pad_id: int, generator=None, stop_at_eos: bool = True
) -> torch.Tensor:
    """harness.lm.sampling.sample_responses for a plain GPT-2 (same conventions, the same draws
    from ``generator``) with a preallocated KV cache. With ``stop_at_eos=False`` every row gets
    exactly ``max_new_tokens`` tokens and EOS is an ordinary token."""
    charge_samples(query_ids.size(0), "harness.lm's GPT-2 sampler")  # a metered run's budget (harness.api.budget)
    transformer, config = model.transformer, model.config
    generator = device_generator(generator, query_ids.device)
    batch, n_query = query_ids.shape
    n_total = n_query + settings.max_new_tokens
    key_mask = torch.zeros(batch, n_total, dtype=torch.bool, device=query_ids.device)
    key_mask[:, :n_query] = query_mask
    cache_shape = (batch, config.n_head, n_total, config.n_embd // config.n_head)
    # float32, or bf16 under --precision bf16's autocast (keys and values come out of bf16 matmuls)
    dtype = compute_dtype(query_ids.device)
    caches = [(torch.empty(cache_shape, device=query_ids.device, dtype=dtype),
               torch.empty(cache_shape, device=query_ids.device, dtype=dtype)) for _ in transformer.h]  # fmt: skip
    ids = query_ids.masked_fill(~query_mask, eos_id)  # PAD is never embedded
    positions = (query_mask.long().cumsum(1) - 1).clamp(min=0)
    next_position = positions[:, -1:] + 1
    start, done, tokens = 0, torch.zeros(batch, dtype=torch.bool, device=query_ids.device), []
    for step in range(settings.max_new_tokens):
        if start == 0:  # the prompt: causal attention over its real tokens
            keep = _keep_mask(key_mask, 0, ids.size(1))
        else:  # one new token: it sees every real key so far, itself included
            keep = key_mask[:, None, None, : start + 1]
        x = _embed([transformer], ids, positions)
        for i, (block, cache) in enumerate(zip(transformer.h, caches)):
            out_from = x.size(2) - 1 if i == len(caches) - 1 else 0
            x = _mlp([block], _attend([block], x, keep, cache, start, out_from))
        logits = lm_logits(model, _layer_norm(x[0, :, -1], [transformer.ln_f]), settings.temperature)
        token = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator).squeeze(1)  # [B] 4
        if stop_at_eos:
            token = token.masked_fill(done, pad_id)  # [N] 10 everything after the first EOS is PAD
            done |= token == eos_id
        tokens.append(token)
        if (stop_at_eos and bool(done.all())) or step == settings.max_new_tokens - 1:
            break
        start += ids.size(1)
        key_mask[:, start] = True
        ids = token.masked_fill(done, eos_id).unsqueeze(1)
        positions, next_position = next_position, next_position + 1
    return torch.stack(tokens, dim=1)


#: A stop id no model can sample: passed as EOS, harness.lm.sampling's sampler never stops.
_NO_STOP = -1


def sample_batch(
    model, tokenizer, prompts: list[str], settings, generator: torch.Generator, stop_at_eos: bool = True
) -> Rollout:
    """[B] 4 pure temperature sampling, [N] 10/11 left-padded queries.

    With ``stop_at_eos`` a response ends at its first EOS (kept) and is PAD afterwards. Without,
    every response has exactly ``max_new_tokens`` tokens and EOS is an ordinary token (TRL's
    ``stop_token=None``). Models that are not plain GPT-2 go through harness.lm.sampling (there,
    the no-stop case passes a stop id that cannot be sampled, with the query's padding pre-filled
    with EOS because that sampler's fill id is its stop id)."""
    device = next(model.parameters()).device
    query_ids, query_mask = encode_prompts(tokenizer, prompts, device)
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    if is_plain_gpt2(model):
        response_ids = gpt2_sample(model, query_ids, query_mask, settings, eos, pad, generator, stop_at_eos)
    elif stop_at_eos:
        response_ids = sample_responses(model, query_ids, query_mask, settings, eos, pad, generator)
    else:
        filled = query_ids.masked_fill(~query_mask, eos)
        response_ids = sample_responses(model, filled, query_mask, settings, _NO_STOP, _NO_STOP, generator)
    return Rollout(list(prompts), query_ids, query_mask, response_ids, tokenizer)


def model_log_probs(model, rollout: Rollout, temperature: float) -> torch.Tensor:
    """Per-token log-probs of the response tokens under ``model`` at ``temperature``,
    ``[B, Tr]``, 0 at padding; differentiable. Plain GPT-2s take the fast path."""
    return token_log_probs(policy_logits(model, rollout, temperature), rollout)


def response_nll(model, rollout: Rollout) -> torch.Tensor:
    """Supervised loss on the responses of ``rollout``: per row, the mean negative
    log-likelihood of its tokens (EOS included) at temperature 1; then the mean over rows."""
    logp = model_log_probs(model, rollout, 1.0)
    return -(logp.sum(1) / rollout.lengths.clamp_min(1)).mean()
