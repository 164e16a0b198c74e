"""Entities and edges from extraction: names resolved to one node per thing, per user.

An entity's id is a hash of its scope and canonical name, so the same name always lands on the
same node without a lookup. Aliases are resolved against the entities the user already has: a
one-word person name that is the first or last word of a known person ("Mia" and "Mia Lopez"),
or a name that differs only by case, an article or a possessive, is the same entity. Each
message adds an edge speaker -> entity ("mentions") tied to its episodic memory, and each fact
adds speaker -> entity edges named by its relation and valid from the fact's valid time; the
graph channel (`retrieve/graph.py`) walks memories through these shared entities.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from engramdb.text.names import canonical
from engramdb.types import Edge, Entity, Scope

__all__ = ["EntityIndex", "entity_id"]

_PERSON_TYPES = frozenset({"PERSON", "person", "speaker"})


def entity_id(scope: Scope, key: str) -> str:
    """The id of the entity with canonical name `key` in a user's scope."""
    raw = f"{scope.tenant_id}\x00{scope.user_id}\x00{key}".encode()
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


def _user_scope(scope: Scope) -> Scope:
    return Scope(tenant_id=scope.tenant_id, user_id=scope.user_id)


@dataclass
class EntityIndex:
    """The entities of one user, for resolving new mentions; collects what to write.

    Args:
        scope: any scope of the user (entities live at user level, shared across sessions).
        known: the user's entities already stored.
    """

    scope: Scope
    known: Sequence[Entity] = ()
    entities: dict[str, Entity] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.scope = _user_scope(self.scope)
        self._by_key: dict[str, Entity] = {}
        self._by_word: dict[str, Entity] = {}
        for entity in self.known:
            self._remember(entity)

    def _remember(self, entity: Entity) -> None:
        for name in (entity.name, *entity.aliases):
            self._by_key[canonical(name)] = entity
        if entity.type in _PERSON_TYPES:
            words = canonical(entity.name).split()
            if len(words) > 1:
                self._by_word.setdefault(words[0], entity)
                self._by_word.setdefault(words[-1], entity)

    def resolve(self, name: str, type_: str) -> Entity:
        """The entity `name` refers to, created (to be written) when it is new."""
        key = canonical(name)
        found = self._by_key.get(key)
        if found is None and type_ in _PERSON_TYPES and " " not in key:
            found = self._by_word.get(key)
        if found is None and type_ in _PERSON_TYPES and " " in key:
            # a full name arriving after its first name alone: adopt the short entity
            short = self._by_key.get(key.split()[0])
            if short is not None and short.type in _PERSON_TYPES and " " not in short.name:
                found = short
        if found is not None:
            if key not in (canonical(a) for a in (found.name, *found.aliases)):
                found = found.model_copy(update={"aliases": [*found.aliases, name]})
                self.entities[found.id] = found
                self._remember(found)
            return found
        entity = Entity(id=entity_id(self.scope, key), scope=self.scope, name=name, type=type_)
        self.entities[entity.id] = entity
        self._remember(entity)
        return entity

    def link(
        self,
        source: Entity,
        targets: Iterable[Entity],
        *,
        relation: str,
        memory_id: str,
        valid_from: datetime | None = None,
    ) -> None:
        """Add source -> target edges stated by one memory."""
        for target in targets:
            if target.id == source.id:
                continue
            self.edges.append(
                Edge(
                    id=uuid.uuid4().hex,
                    scope=self.scope,
                    source_id=source.id,
                    target_id=target.id,
                    relation=relation,
                    memory_id=memory_id,
                    valid_from=valid_from,
                )
            )
