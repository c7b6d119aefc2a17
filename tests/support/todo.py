"""The mirror's todo read whole, for tests (the run streams it)."""

from __future__ import annotations

from bandersnatch.ledger.state import StateFiles, Todo


def read_todo(files: StateFiles) -> Todo | None:
    """The pending work as an in-memory ``Todo``; None when there is none."""
    pending = files.open_todo()
    if pending is None:
        return None
    todo = Todo(pending.target)
    for name, serial in pending:
        todo.add(name, serial)
    return todo
