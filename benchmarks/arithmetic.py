"""``arithmetic``: answer small addition / subtraction problems, exactly and in the right format.

A second embedded benchmark whose gold reward is *verifiable* rather than a model's opinion, so
conclusions need not rest on the sentiment task alone. Numbers are written digit by digit, one
word per digit (the pipeline's tokenizer is word-level): the prompt ``"3 7 + 4 5 ="`` expects
the response ``"8 2"`` followed by EOS, and ``"1 2 - 4 5 ="`` expects ``"- 3 3"``.

Everything is built here, nothing downloaded:
- problems: ``a + b`` and ``a - b`` for operands 0..``max_operand``; prompts are split into
  train / held-out eval **by prompt string**. The corpus covers the whole problem space (as the
  sentiment corpus covers its prompts), so the split separates the prompts RL optimizes on from
  those it is judged on; it does not ask a 2-layer model to discover arithmetic on unseen sums;
- corpus: ``"a op b = c"`` lines with deliberate noise: a share ``corpus_error_rate`` of lines
  carry a wrong answer and a share ``corpus_filler_rate`` carry a filler word ("um 8 2",
  "8 2 ok"). π_sft therefore samples wrong and malformed answers at temperature 1, which is the
  room RL has to improve;
- SFT: (prompt, answer) demonstrations from the train prompts only (eval prompts are seen in
  pretraining, never in SFT), with the same two kinds of noise at their own (lower) rates.

The defaults (operands ≤ 15: 512 problems, 112 of them eval; 40k corpus lines ≈ 625 pretraining
steps) are sized so that the default 2×128 policy after one pretraining epoch samples an exact
answer roughly 35–50% of the time at temperature 1. A 2-layer model learns these sums slowly
(step-limited, not data-limited), so larger operands or a smaller corpus leave π_sft mostly
wrong: operands ≤ 20 give ~26% exact on eval prompts, ≤ 30 with 20k lines ~7%.

Gold r* (deterministic; the prompt itself says what the answer is, nothing is looked up):

    exact answer, well formed, ended with EOS        1.0
    well-formed number, ended, wrong                 format_credit + closeness_credit · max(0, 1 − |error| / error_scale)
                                                     (defaults: 0.2 … 0.5; off by one ≈ 0.47, off by ≥ 10 → 0.2)
    ended but malformed (filler words, leading       −malformed_penalty (−0.5)
      zeros, "- 0", empty, <unk>...)
    no EOS within max_new_tokens                     −unfinished_penalty (−1.0)

"Well formed" means the canonical spelling: an optional "-", then digits without leading zeros.
The format tiers sit far apart so the annotator's preferences first teach format, and the
closeness term lets preferences between two wrong answers carry signal too; no wrong answer
scores more than format_credit + closeness_credit (0.5 by default), so an exact answer always
wins clearly. There is no judge LM.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cached_property

import torch

from harness.api import Benchmark, BenchmarkConfig, help_field

DIGITS = [str(d) for d in range(10)]
OPERATIONS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b}
# Words the corpus sometimes puts around an answer, so π_sft can (and does) emit malformed text.
FILLERS = ["um", "so", "ok", "then"]
# A wrong answer in the data is off by 1..MAX_SLIP (the size of a dropped or spurious carry).
MAX_SLIP = 10


@dataclass
class ArithmeticConfig(BenchmarkConfig):
    corpus_size: int = help_field("pretraining lines 'a op b = c'", 40000)
    sft_size: int = help_field("SFT (prompt, answer) demonstrations, from train prompts", 10000)
    max_operand: int = help_field("operands range over 0..max_operand (problems: 2·(max_operand+1)² with both operations)", 15)
    operations: str = help_field("which operations problems use: any of '+' and '-'", "+-")
    eval_fraction: float = help_field("share of distinct problems held out for evaluation", 0.22)
    corpus_error_rate: float = help_field("share of corpus lines with a wrong answer", 0.15)
    corpus_filler_rate: float = help_field("share of corpus lines with a filler word around the answer", 0.1)
    sft_error_rate: float = help_field("share of SFT demonstrations with a wrong answer", 0.05)
    sft_filler_rate: float = help_field("share of SFT demonstrations with a filler word", 0.05)
    format_credit: float = help_field("gold of a well-formed, ended but wrong answer far from the truth", 0.2)
    closeness_credit: float = help_field("extra gold for a wrong answer near the truth, linear to 0 at |error| = error_scale", 0.3)
    error_scale: float = help_field("|error| at which a wrong answer's closeness credit reaches 0", 10.0)
    malformed_penalty: float = help_field("gold is −this for an ended response that is not a canonical number (fillers, leading zeros, empty)", 0.5)
    unfinished_penalty: float = help_field("gold is −this for a response without EOS within max_new_tokens", 1.0)
    judge_layers: int = help_field("GPT-2 layers of a judge LM (arithmetic needs none: r* is verifiable)", 0)
    max_new_tokens: int = help_field("maximum response length, in tokens, for every sampler", 6)

    def __post_init__(self):
        super().__post_init__()
        if not self.operations or set(self.operations) - set(OPERATIONS):
            raise ValueError(f"operations must be a non-empty string of '+' and '-', got {self.operations!r}")
        if self.max_operand < 1:
            raise ValueError(f"max_operand must be >= 1, got {self.max_operand}")
        for name in ["corpus_error_rate", "corpus_filler_rate", "sft_error_rate", "sft_filler_rate"]:
            if getattr(self, name) > 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.corpus_error_rate + self.corpus_filler_rate > 1 or self.sft_error_rate + self.sft_filler_rate > 1:
            raise ValueError("an error rate plus its filler rate must be at most 1")
        if not 0 < self.eval_fraction < 1:
            raise ValueError(f"eval_fraction must be in (0, 1), got {self.eval_fraction}")
        if self.format_credit + self.closeness_credit >= 1:
            raise ValueError("format_credit + closeness_credit must be < 1: a wrong answer may not score like an exact one")
        if self.error_scale <= 0:
            raise ValueError(f"error_scale must be > 0, got {self.error_scale}")
        extremes = {"+": 2 * self.max_operand, "-": -self.max_operand}
        longest = max(len(spell(extremes[op]).split()) for op in set(self.operations))
        if self.max_new_tokens < longest + 1:
            raise ValueError(f"max_new_tokens must be >= {longest + 1} (the longest answer plus EOS), got {self.max_new_tokens}")


def spell(n: int) -> str:
    """An integer as words, one per digit: 82 → "8 2", −33 → "- 3 3"."""
    return " ".join(("-" + str(-n)) if n < 0 else str(n))


def parse_number(text: str) -> int | None:
    """The integer spelled canonically by ``text`` (inverse of :func:`spell`), else ``None``:
    one digit per word, an optional leading "-", no leading zeros, no "- 0"."""
    words = text.split()
    negative = bool(words) and words[0] == "-"
    digits = words[1:] if negative else words
    if not digits or any(w not in DIGITS for w in digits) or (digits[0] == "0" and (len(digits) > 1 or negative)):
        return None
    value = int("".join(digits))
    return -value if negative else value


def parse_problem(prompt: str) -> tuple[int, str, int]:
    """``"3 7 + 4 5 ="`` → (37, "+", 45)."""
    words = prompt.split()
    ops = [i for i, w in enumerate(words) if w in OPERATIONS]
    if len(ops) != 1 or not words or words[-1] != "=":
        raise ValueError(f"not an arithmetic prompt: {prompt!r}")
    i = ops[0]
    a, b = parse_number(" ".join(words[:i])), parse_number(" ".join(words[i + 1 : -1]))
    if a is None or b is None:
        raise ValueError(f"not an arithmetic prompt: {prompt!r}")
    return a, words[i], b


def answer(prompt: str) -> int:
    a, op, b = parse_problem(prompt)
    return OPERATIONS[op](a, b)


def gold_score(prompt: str, response: str, ended: bool, config: ArithmeticConfig) -> float:
    """r* of one response; see the module docstring for the tiers."""
    if not ended:
        return -config.unfinished_penalty
    value = parse_number(response)
    if value is None:
        return -config.malformed_penalty
    error = abs(value - answer(prompt))
    if error == 0:
        return 1.0
    return config.format_credit + config.closeness_credit * max(0.0, 1.0 - error / config.error_scale)


class Arithmetic(Benchmark):
    name = "arithmetic"
    description = "exact answers to small + / − problems, digit by digit; gold = verifiable correctness + format (embedded)"
    version = "1"
    gold_settings = ("format_credit", "closeness_credit", "error_scale", "malformed_penalty", "unfinished_penalty")
    Config = ArithmeticConfig

    def problems(self) -> list[str]:
        """Every distinct prompt, in a fixed order."""
        n, ops = self.config.max_operand, [op for op in OPERATIONS if op in self.config.operations]
        return [f"{spell(a)} {op} {spell(b)} =" for op in ops for a in range(n + 1) for b in range(n + 1)]

    def noisy_answer(self, rng: random.Random, prompt: str, error_rate: float, filler_rate: float) -> str:
        """The answer to ``prompt`` as a text might write it: wrong (off by 1..MAX_SLIP) with
        probability ``error_rate``, wrapped in a filler word with probability ``filler_rate``,
        else exact."""
        value, draw = answer(prompt), rng.random()
        if draw < error_rate:
            return spell(value + rng.choice([-1, 1]) * rng.randint(1, MAX_SLIP))
        if draw < error_rate + filler_rate:
            filler = rng.choice(FILLERS)
            return f"{filler} {spell(value)}" if rng.random() < 0.5 else f"{spell(value)} {filler}"
        return spell(value)

    def corpus(self, rng: random.Random) -> list[str]:
        problems, c = self.problems(), self.config
        lines = []
        for _ in range(c.corpus_size):
            prompt = rng.choice(problems)
            lines.append(f"{prompt} {self.noisy_answer(rng, prompt, c.corpus_error_rate, c.corpus_filler_rate)}")
        return lines

    @cached_property
    def split(self) -> tuple[list[str], list[str]]:
        """(train, eval) prompts, a function of ``seed`` alone: SFT needs the train side too."""
        problems = self.problems()  # distinct by construction, so the split is by prompt string
        random.Random(f"arithmetic-split-{self.config.seed}").shuffle(problems)
        n_eval = max(1, int(len(problems) * self.config.eval_fraction))
        return problems[n_eval:], problems[:n_eval]

    def sft_pairs(self, rng: random.Random) -> list[tuple[str, str]]:
        # Demonstrations use train prompts only: eval prompts are seen in pretraining, never in SFT.
        train, c = self.split[0], self.config
        return [(p, self.noisy_answer(rng, p, c.sft_error_rate, c.sft_filler_rate)) for p in (rng.choice(train) for _ in range(c.sft_size))]

    def prompts(self, rng: random.Random) -> tuple[list[str], list[str]]:
        # ``rng`` is unused: the split is fixed by the seed so that sft_pairs agrees with it.
        train, held_out = self.split
        return list(train), list(held_out)

    def gold_reward(self, judge):
        config = self.config

        def gold(prompts: list[str], responses: list[str], ended: torch.Tensor) -> torch.Tensor:
            flags = torch.as_tensor(ended).tolist()
            return torch.tensor([gold_score(p, r, bool(e), config) for p, r, e in zip(prompts, responses, flags)], dtype=torch.float32)

        return gold
