"""Events read as rows: the few fields a reader keeps, in a tuple, instead of a model instance."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from agentflux.schemas._models import BaseEvent

__all__ = ["EventRows", "RowSpec"]

# (first, field names): a row is (first, value of each named field); first is the reader's own.
RowSpec = tuple[Any, tuple[str, ...]]


class EventRows:
    """Which fields of each event type a reader keeps, in a row ``(first, value, ...)``.

    ``fields`` gives a model its :data:`RowSpec`; every other model takes ``default``. ``first``
    is the reader's (a function that folds the row in, say): it tells rows of different types
    apart. The C decoder builds rows straight from the bytes, after every check a model gets,
    with no instance in between (:meth:`AvroCodec.decode_many_rows_cached`); :meth:`row` makes
    the same row of an instance, for records decoded any other way.
    """

    def __init__(self, fields: Mapping[type[BaseEvent], RowSpec], default: RowSpec) -> None:
        """Keep ``fields[model]`` for those models, ``default`` for any other."""
        self._fields = dict(fields)
        self._default = default

    def spec(self, model: type[BaseEvent]) -> RowSpec:
        """The first item and the field names of ``model``'s rows."""
        return self._fields.get(model, self._default)

    def row(self, event: BaseEvent) -> tuple[Any, ...]:
        """The row of an instance: the one the C decoder makes of its bytes."""
        first, names = self.spec(type(event))
        return (first, *[getattr(event, name) for name in names])

    def indexes(self, model: type[BaseEvent]) -> tuple[Any, ...]:
        """The C decoder's projection: the first item, then each name's place in the model."""
        first, names = self.spec(model)
        order = list(model.model_fields)
        return (first, *[order.index(name) for name in names])
