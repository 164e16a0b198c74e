"""The topics the facts of a batch hold (`engramdb.topics`), as slots."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from engramdb.ingest.extract import Fact
from engramdb.topics import TopicReader

__all__ = ["with_topics"]

#: Relations of facts that state no current state of the speaker: plans, the past, endings
#: and changes of plans (handled by `Fact.ends` and `Fact.reschedules`). A statement with
#: another subject about the speaker ("today was my first day at Alstom") may hold a topic;
#: one about another person or animal (`Fact.about_other`) holds none.
_NO_TOPIC = frozenset(
    ["plans", "planned", "used_to", "lived_in", "worked", "ended", "gone", "rescheduled"]
)


def with_topics(
    facts: Sequence[Fact],
    keys: Sequence[str],
    vectors: npt.NDArray[np.float32],
    reader: TopicReader,
) -> list[Fact]:
    """The facts, each slot-less statement about the speaker's own present given the slot of
    its topic (its value: the statement without the speaker's name), unless another fact of
    the same message holds that slot already."""
    held = {(f.episode_id, f.slot) for f in facts if f.slot}
    eligible = [
        i
        for i, f in enumerate(facts)
        if f.slot is None and not f.negated and not f.about_other and f.relation not in _NO_TOPIC
    ]
    out = list(facts)
    for i, slot in zip(eligible, reader.slots(vectors[eligible]), strict=True):
        if slot is not None and (facts[i].episode_id, slot) not in held:
            out[i] = replace(facts[i], slot=slot, value=keys[i])
    return out
