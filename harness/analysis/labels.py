"""Labels of leaderboard rows and sections: what tells runs of one algorithm apart
(:func:`config_labels`), what tells sections of one benchmark apart (:func:`settings_labels`),
and a unique name per row of a table (:func:`row_labels`, what ``--baseline`` takes). Layer:
harness.analysis (imports nothing of the harness).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def _value_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def differences(items: list[dict[str, Any]], prefix: str = "") -> list[str]:
    """For each dict, ``k=v`` of the keys whose values are not the same in all of them (a key
    missing from some counts as differing), joined by ", ": what tells the items apart."""
    keys = list(dict.fromkeys(k for item in items for k in item))  # in the configs' own order
    varying = [k for k in keys if len({_value_text(item.get(k, "<unset>")) for item in items}) > 1]
    return [", ".join(f"{prefix}{k}={_value_text(item[k])}" for k in varying if k in item) for item in items]


def _flat_settings(spec) -> dict[str, Any]:
    """A section's identity as flat settings: the benchmark's config and the evaluation's."""
    return {**spec.benchmark.config, **{f"eval.{k}": v for k, v in spec.evaluation.items()}}


def config_labels(specs: list, with_reward_model: bool = False) -> list[str]:
    """What tells each of ``specs`` (one algorithm's) apart from the others: the algorithm's
    settings, ``budget=…``, with ``with_reward_model`` the reward model's name, and the reward
    model's settings (``rm.…``, compared among specs with the same reward model)."""
    parts: list[list[str]] = [[] for _ in specs]
    fields = [[s.algorithm.config for s in specs], [{"budget": s.budget} for s in specs]]
    if with_reward_model:
        fields.append([{"reward_model": s.reward_model.name} for s in specs])
    for items in fields:
        for i, text in enumerate(differences(items)):
            parts[i].append(text)
    by_rm: dict[str, list[int]] = {}
    for i, spec in enumerate(specs):
        by_rm.setdefault(spec.reward_model.name, []).append(i)
    for same_rm in by_rm.values():
        for i, text in zip(same_rm, differences([specs[i].reward_model.config for i in same_rm], prefix="rm.")):
            parts[i].append(text)
    return [", ".join(p for p in row if p) for row in parts]


def settings_labels(specs: list) -> list[str]:
    """What tells each of ``specs`` (one benchmark's) apart in benchmark and evaluation settings."""
    return differences([_flat_settings(spec) for spec in specs])


def label_rows(rows: list[dict[str, Any]], specs: list) -> None:
    """Fill ``settings`` (what tells a section apart from the benchmark's other sections) and
    ``config`` (what tells a row apart from its algorithm's other rows in the section)."""
    by_benchmark: dict[tuple, list[int]] = {}
    for i, spec in enumerate(specs):
        by_benchmark.setdefault((spec.benchmark.name, spec.benchmark.version), []).append(i)
    for indices in by_benchmark.values():
        for i, text in zip(indices, settings_labels([specs[i] for i in indices])):
            rows[i]["settings"] = text
    groups: dict[tuple, list[int]] = {}
    for i, spec in enumerate(specs):
        groups.setdefault((rows[i]["benchmark"], rows[i]["version"], rows[i]["settings"], spec.algorithm.name), []).append(i)
    for indices in groups.values():
        for i, text in zip(indices, config_labels([specs[i] for i in indices])):
            rows[i]["config"] = text


def section_key(row: Mapping[str, Any]) -> tuple[str, str, str]:
    return row["benchmark"], row["version"], row["settings"]


def section_title(section: tuple[str, str, str]) -> str:
    bench, version, settings = section
    title = f"{bench} (v{version})" if version else bench
    return title + (f" · {settings}" if settings else "")


def descriptors(row: Mapping[str, Any]) -> list[str]:
    """Everything that may tell a row apart from the other rows of its algorithm in its table."""
    parts = [p for p in str(row["config"]).split(", ") if p]
    return parts + [f"reward_model={str(row['reward_model']).removesuffix(' (oracle)')}", f"code={row['code']}",
                    f"key={str(row['key'])[:8]}"]  # fmt: skip


def row_labels(rows: list[Mapping[str, Any]]) -> list[str]:
    """A name for each row, unique in its table (benchmark, version and settings): its algorithm,
    and where the table has several rows of that algorithm, what tells them apart in parentheses —
    ``rm-ranking (kl_coef=0, reward=rank)``, ``ppo (reward_model=gold)``. ``--baseline`` takes these."""
    groups: dict[tuple, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault((*section_key(row), row["algorithm"]), []).append(i)
    labels = [str(row["algorithm"]) for row in rows]
    for indices in groups.values():
        if len(indices) < 2:
            continue
        config = [str(rows[i]["config"]) for i in indices]
        fields = [config if len(set(config)) > 1 else [""] * len(indices)]
        for name, column in (("reward_model", "reward_model"), ("code", "code"), ("key", "key")):
            values = [str(rows[i][column]).removesuffix(" (oracle)") for i in indices]
            if len(set(zip(*fields))) == len(indices):
                break  # told apart already
            if len(set(values)) > 1:
                fields.append([f"{name}={v[:8] if name == 'key' else v}" for v in values])
        for i, parts in zip(indices, zip(*fields)):
            text = ", ".join(p for p in parts if p)
            labels[i] += f" ({text})" if text else ""
    return labels
