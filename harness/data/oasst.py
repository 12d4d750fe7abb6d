"""OpenAssistant (oasst2, also oasst1) message trees → SFT threads and K-wise rankings.

Both published layouts are read: **flat** message rows (``message_id``, ``parent_id``,
``role`` = ``prompter``/``assistant``, ``text``, ``lang``, ``rank``, ``deleted``,
``review_result``, ``synthetic``, …, as in the Hub parquet) and **nested** trees (a row per tree
whose ``prompt`` message holds its ``replies`` recursively, as in ``*.trees.jsonl``).

Rules:

* **Left out**: a message that is ``deleted``, has ``review_result`` false, is ``synthetic``
  (unless ``drop_synthetic=False``) or is not in ``lang`` (``None`` keeps all) — with its whole
  subtree, since its replies answer it. Each is counted under its reason, its descendants under
  "message under a left-out message"; a flat row whose parent is absent likewise.
* **SFT**: one thread per tree, from the prompt down, following at each level the best-ranked
  reply (lowest ``rank``; unranked replies after ranked ones; ties to the earliest in message
  order). Each assistant turn of the thread is one :class:`SFTExample` whose prompt is the
  conversation before it.
* **Rankings**: at every kept prompter message, its assistant replies ordered by ``rank`` (lower
  is better). Replies with a null rank are left out ("reply without a rank"). Of replies that
  share a rank, only the first in message order (row order in the flat layout, list order in
  the nested one) is kept ("reply tied in rank with an earlier sibling"). A prompt needs two
  replies of distinct rank; one with a single reply, or fewer than two left, yields no ranking
  (each counted). OASST ranks siblings before filtering, so ranks may have gaps; only order counts.
* **index**: flat layout — the record of the assistant message (SFT) or of the prompter message
  (rankings); nested layout — the record of the tree.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterator

from harness.data.records import Record
from harness.data.types import LoadOptions, LoadReport, Messages, Ranking, SFTExample

ROLES = {"prompter": "user", "assistant": "assistant"}


@dataclass
class _Message:
    id: str
    parent_id: str | None
    role: str
    text: str
    lang: str | None
    rank: int | None
    deleted: bool
    review_failed: bool
    synthetic: bool
    record: int
    replies: list[_Message] = field(default_factory=list)

    def size(self) -> int:
        return 1 + sum(reply.size() for reply in self.replies)


def _message(record: Record) -> _Message:
    role = record.text("role")
    if role not in ROLES:
        raise record.invalid("role", role, "'prompter' or 'assistant'")
    return _Message(
        id=record.text("message_id"),
        parent_id=record.optional_text("parent_id"),
        role=ROLES[role],
        text=record.text("text"),
        lang=record.optional_text("lang"),
        rank=record.optional_int("rank"),
        deleted=bool(record.optional_flag("deleted")),
        review_failed=record.optional_flag("review_result") is False,  # null: not reviewed yet, kept
        synthetic=bool(record.optional_flag("synthetic")),
        record=record.index,
    )


def _flat_trees(records: list[Record], report: LoadReport) -> list[_Message]:
    by_id: dict[str, _Message] = {}
    for record in records:
        message = _message(record)
        if message.id in by_id:
            raise record.error(f"message_id {message.id!r} repeats record {by_id[message.id].record}")
        by_id[message.id] = message
    roots, orphans = [], []
    for message in by_id.values():  # row order, so replies keep message order
        if message.parent_id is None:
            roots.append(message)
        elif message.parent_id in by_id:
            by_id[message.parent_id].replies.append(message)
        else:
            orphans.append(message)
    for orphan in orphans:
        report.skip("message whose parent is not in the source", orphan.size())
    return roots


def _nested_tree(record: Record) -> _Message:
    message = _message(record)
    message.replies = [_nested_tree(reply) for reply in record.children("replies")]
    return message


def _nested_trees(records: list[Record], report: LoadReport) -> list[_Message]:
    roots = []
    for record in records:
        if record.has("prompt"):
            roots.append(_nested_tree(record.child("prompt")))
        else:
            report.skip("tree without a prompt")
    return roots


def _exclusion(message: _Message, options: LoadOptions) -> str | None:
    if message.deleted:
        return "message deleted"
    if message.review_failed:
        return "message failed review"
    if message.synthetic and options.drop_synthetic:
        return "message synthetic"
    if options.lang is not None and message.lang != options.lang:
        return f"message not in language {options.lang!r}"
    return None


def _pruned(message: _Message, options: LoadOptions, report: LoadReport) -> _Message | None:
    reason = _exclusion(message, options)
    if reason:
        report.skip(reason)
        if message.size() > 1:
            report.skip("message under a left-out message", message.size() - 1)
        return None
    kept = (_pruned(reply, options, report) for reply in message.replies)
    return replace(message, replies=[reply for reply in kept if reply is not None])


def kept_trees(records: list[Record], options: LoadOptions, report: LoadReport) -> list[_Message]:
    """The trees of either layout, less what the rules leave out (counted in ``report``)."""
    if "message_id" in records[0].data:
        roots = _flat_trees(records, report)
    elif "prompt" in records[0].data:
        roots = _nested_trees(records, report)
    else:
        raise records[0].error("neither an OASST message row (message_id, parent_id, role, text, …) nor a tree (prompt)")
    trees = []
    for root in roots:
        if root.role != "user":
            report.skip("tree that does not start with a prompter message", root.size())
        elif (tree := _pruned(root, options, report)) is not None:
            trees.append(tree)
    return trees


def _best_reply(message: _Message) -> _Message | None:
    """Lowest rank first, unranked last; ``min`` keeps the earliest of equals (message order)."""
    return min(message.replies, key=lambda reply: (reply.rank is None, reply.rank or 0), default=None)


def sft(records: list[Record], options: LoadOptions, report: LoadReport) -> list[SFTExample]:
    """Each tree's best-ranked thread, one example per assistant turn."""
    examples: list[SFTExample] = []
    report.conversations = 0
    for root in kept_trees(records, options, report):
        conversation: Messages = []
        before = len(examples)
        node: _Message | None = root
        while node is not None:
            if node.role == "assistant":
                prompt = [dict(m) for m in conversation]
                examples.append(SFTExample(prompt=prompt, response=node.text, category=None, index=node.record))
            conversation.append({"role": node.role, "content": node.text})
            node = _best_reply(node)
        if len(examples) > before:
            report.conversations += 1
        else:
            report.skip("conversation without an assistant reply")
    return examples


def _walk(root: _Message) -> Iterator[tuple[_Message, Messages]]:
    """Every message with the conversation up to and including it, depth first, in message order."""
    stack = [(root, [])]
    while stack:
        node, before = stack.pop()
        conversation = before + [{"role": node.role, "content": node.text}]
        yield node, conversation
        stack.extend((reply, conversation) for reply in reversed(node.replies))


def _ranking(prompter: _Message, conversation: Messages, report: LoadReport) -> Ranking | None:
    replies = [reply for reply in prompter.replies if reply.role == "assistant"]
    if not replies:
        report.skip("prompt without an assistant reply")
        return None
    if len(replies) == 1:
        report.skip("prompt with a single reply (nothing to rank)")
        return None
    kept: list[_Message] = []
    for reply in replies:
        if reply.rank is None:
            report.skip("reply without a rank")
        elif any(reply.rank == other.rank for other in kept):
            report.skip("reply tied in rank with an earlier sibling")
        else:
            kept.append(reply)
    if len(kept) < 2:
        report.skip("prompt with fewer than 2 distinctly ranked replies")
        return None
    order = sorted(range(len(kept)), key=lambda i: kept[i].rank)
    return Ranking(prompt=[dict(m) for m in conversation], responses=[r.text for r in kept], ranking=order, index=prompter.record)


def rankings(records: list[Record], options: LoadOptions, report: LoadReport) -> list[Ranking]:
    """Every kept prompter message's assistant replies, ranked (see the module rules)."""
    found = []
    for root in kept_trees(records, options, report):
        for node, conversation in _walk(root):
            if node.role == "user" and (ranking := _ranking(node, conversation, report)) is not None:
                found.append(ranking)
    return found
