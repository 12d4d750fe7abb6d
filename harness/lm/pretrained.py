"""Pretrained models and tokenizers by hub id or local folder: any decoder-only
``AutoModelForCausalLM`` / ``AutoModelForSequenceClassification`` (a GPT-2, a Llama, ...), read
from safetensors only, and the check that a model and a tokenizer follow the toolkit's
conventions (harness.lm.sampling): EOS exists, PAD differs from it and lies outside the model's
vocabulary, so that a sampled token is never mistaken for padding.
"""

from __future__ import annotations

import copy

import re
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from harness.errors import UsageError
from harness.lm.build import PAD  # the harness's own padding token, the embedded tokenizers' too

#: Used instead when a tokenizer already has ``<pad>`` as a token of its own vocabulary.
_SPARE_PAD = "<|harness_pad|>"
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")
_PICKLE_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")


def _source(name_or_path, what: str) -> str:
    """``name_or_path`` as from_pretrained should get it: an existing folder, or a hub id.
    Anything else (a missing path, a file) is the user's to fix, and said in one line."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.is_dir():
        return str(path)
    if path.exists():
        raise UsageError(f"the {what} {text} is a file: give the folder save_pretrained wrote, or a hub id")
    if isinstance(name_or_path, Path) or not _HUB_ID.fullmatch(text):
        raise UsageError(f"no such folder for the {what}: {text}")
    return text


def _require_safetensors(folder: Path, what: str) -> None:
    """A local model folder must hold safetensors weights: pickled ones (``pytorch_model.bin``)
    can run code when loaded, so they are refused, not read."""
    if any(folder.glob("*.safetensors")):
        return
    pickles = sorted(p.name for pattern in _PICKLE_WEIGHTS for p in folder.glob(pattern))
    if pickles:
        raise UsageError(f"the {what} {folder} has only pickled weights ({', '.join(pickles)}); the harness loads "
                         "safetensors only (it never unpickles): re-save the model with save_pretrained")  # fmt: skip
    raise UsageError(f"the {what} {folder} has no model weights (model.safetensors): is it a save_pretrained folder?")


def _first_line(error: Exception) -> str:
    return next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)


def _from_pretrained(auto_class, name_or_path, what: str, **kwargs):
    source = _source(name_or_path, what)
    if Path(source).is_dir():
        _require_safetensors(Path(source), what)
    try:
        # float32 whatever the checkpoint's dtype: models are trained in place with AdamW (no master
        # weights) and their log-probs compared across models; half precision would spoil both.
        return auto_class.from_pretrained(source, use_safetensors=True, dtype=torch.float32, **kwargs)
    except (OSError, ValueError) as error:  # not found, hub unreachable, no safetensors, unknown config
        raise UsageError(f"cannot load the {what} {name_or_path}: {_first_line(error)}") from error


def load_causal_lm(name_or_path: Path | str, device: torch.device | str = "cpu"):
    """A causal LM from a ``save_pretrained`` folder or a hub id (any ``AutoModelForCausalLM``;
    safetensors weights only, float32), on ``device``, in eval mode. The embedded benchmarks'
    GPT-2 folders load as ``GPT2LMHeadModel``, as before. :class:`UsageError` when it cannot be loaded."""
    return _from_pretrained(AutoModelForCausalLM, name_or_path, "causal LM").to(device).eval()


def load_sequence_classifier(name_or_path: Path | str, device: torch.device | str = "cpu"):
    """A sequence classifier (``AutoModelForSequenceClassification``, safetensors only, float32)
    on ``device``, in eval mode: a saved reward model."""
    return _from_pretrained(AutoModelForSequenceClassification, name_or_path, "sequence classifier").to(device).eval()


def load_pretrained_tokenizer(name_or_path: Path | str, model=None):
    """A pretrained tokenizer (``AutoTokenizer``) set up for the toolkit: left padding, and a PAD
    token that differs from EOS and lies outside the model's vocabulary.

    ``Rollout.response_mask`` is ``response_ids != pad_id``, so PAD must be a token the model
    never produces: a tokenizer without one, or whose PAD is its EOS (GPT-2, Llama), gets a new
    special ``<pad>`` appended after its vocabulary. The model is NOT resized: PAD is never
    embedded (the samplers replace it by EOS before every forward). With ``model``, a PAD inside
    the model's output vocabulary is replaced too (Qwen's ``<|endoftext|>`` pad is a token the
    model emits), and where the model has more output rows than the tokenizer has tokens (rows
    padded to a round number), unused placeholder tokens fill the gap so that PAD lands past the
    last row; then :func:`check_model_tokenizer` verifies the pair.
    """
    source = _source(name_or_path, "tokenizer")
    if Path(source).is_dir() and not any((Path(source) / f).exists() for f in _TOKENIZER_FILES):
        raise UsageError(f"the folder {source} has no tokenizer ({' / '.join(_TOKENIZER_FILES[:2])})")
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, padding_side="left")
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot load the tokenizer {name_or_path}: {_first_line(error)}") from error
    if tokenizer.eos_token_id is None:
        raise UsageError(f"the tokenizer {name_or_path} has no EOS token: responses could never end")
    rows = _output_rows(model)
    pad = tokenizer.pad_token_id
    if pad is None or pad == tokenizer.eos_token_id or (rows is not None and pad < rows):
        if rows is not None and len(tokenizer) < rows:
            tokenizer.add_tokens([f"<|harness_unused_{i}|>" for i in range(rows - len(tokenizer))], special_tokens=True)
        # a ``<pad>`` already in the vocabulary is a token of its own (the model may produce it)
        tokenizer.add_special_tokens({"pad_token": PAD if PAD not in tokenizer.get_vocab() else _SPARE_PAD})
    if model is not None:
        check_model_tokenizer(model, tokenizer)
    return tokenizer


def _output_rows(model) -> int | None:
    """How many token ids ``model`` can produce (its LM head's rows); ``None`` without an LM head."""
    head = None if model is None else model.get_output_embeddings()
    return None if head is None else head.weight.size(0)


def check_model_tokenizer(model, tokenizer) -> None:
    """Verify that ``model`` (a causal LM or a sequence classifier) and ``tokenizer`` can be used
    together by the toolkit; :class:`UsageError` saying what is wrong otherwise:

    - the tokenizer has an EOS, and a PAD that differs from it;
    - every real token id (all but PAD) is below the model's embedding rows (else the tokenizer
      is not the model's);
    - a causal LM cannot produce PAD (its id is past the LM head's rows), and its logits are
      ``lm_head(last hidden state)``, which the batched forwards (:func:`response_hidden`,
      :func:`lm_logits`) compute: an architecture that post-processes them (soft-capping,
      scaling) would train on other log-probs than it samples from.
    """
    name = type(model).__name__
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    if eos is None:
        raise UsageError("the tokenizer has no EOS token: responses could never end")
    if pad is None or pad == eos:
        raise UsageError("the tokenizer's PAD must exist and differ from EOS (load it with load_pretrained_tokenizer)")
    embedded = model.get_input_embeddings().weight.size(0)
    largest = max(i for i in tokenizer.get_vocab().values() if i != pad)
    if largest >= embedded:
        raise UsageError(f"the tokenizer has token ids up to {largest} but the {name} embeds only {embedded}: "
                         "they do not belong together")  # fmt: skip
    rows = _output_rows(model)
    if rows is None:
        return
    if pad < rows:
        raise UsageError(f"the tokenizer's PAD (id {pad}) is one of the {rows} tokens the {name} can sample: a sampled PAD "
                         "would be read as padding (load the tokenizer with load_pretrained_tokenizer(path, model))")  # fmt: skip
    was_training = model.training
    model.eval()
    with torch.no_grad():
        ids = torch.arange(min(embedded, 8), device=model.get_input_embeddings().weight.device).unsqueeze(0)  # a few real ids
        direct = model(input_ids=ids).logits
        split = model.get_output_embeddings()(model.base_model(input_ids=ids).last_hidden_state)
    model.train(was_training)
    if not torch.allclose(direct.float(), split.float(), rtol=1e-4, atol=1e-4):
        raise UsageError(f"the {name} post-processes its logits after the LM head: the harness's batched forwards "
                         "(lm_head of the last hidden state) would disagree with what it samples")  # fmt: skip


def tokenizer_for_trainers(tokenizer):
    """A copy of ``tokenizer`` for third-party trainers (TRL's SFT, DPO, GRPO, RLOO): PAD = EOS,
    since they embed their padding (the harness's PAD lies outside the vocabulary; attention masks
    hide it), and no special tokens added around a text — the harness encodes prompts with
    ``add_special_tokens=False``, so a trainer must see the ids that sampling and scoring see
    (else a Llama-family tokenizer would add a BOS in training only)."""
    from tokenizers import processors

    tok = copy.deepcopy(tokenizer)
    tok.pad_token = tok.eos_token
    backend = getattr(tok, "backend_tokenizer", None)
    probe = "a"
    if backend is not None and tok(probe)["input_ids"] != tok(probe, add_special_tokens=False)["input_ids"]:
        backend.post_processor = processors.TemplateProcessing(single="$A", pair="$A $B:1", special_tokens=[])
    return tok
