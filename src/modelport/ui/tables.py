"""Tables that page and sort on the server: the query string says which page and which
column, so every view has a link to share and the browser's back button works."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

Row = TypeVar("Row")
PAGE_SIZE = 25


@dataclass(frozen=True)
class Column:
    """A sortable column: its query name, its header and the sort key of a row."""

    name: str
    label: str
    key: Callable[[Any], Any]


@dataclass(frozen=True)
class Page(Generic[Row]):
    """One page of a sorted table and what its links need."""

    rows: Sequence[Row]
    total: int
    page: int
    pages: int
    sort: str
    descending: bool
    query: Mapping[str, str]  # the rest of the query string (filters), kept in every link

    @property
    def first(self) -> int:
        """The 1-based number of the page's first row (0 when empty)."""
        return (self.page - 1) * PAGE_SIZE + 1 if self.total else 0

    @property
    def last(self) -> int:
        """The 1-based number of the page's last row."""
        return self.first + len(self.rows) - 1 if self.total else 0

    def link(self, **changes: Any) -> str:
        """The query string of this view with ``changes`` (page, sort, order)."""
        values = {
            **self.query,
            "sort": self.sort,
            "order": "desc" if self.descending else "asc",
            "page": str(self.page),
        }
        values.update({k: str(v) for k, v in changes.items()})
        return "?" + urlencode({k: v for k, v in values.items() if v != ""})

    def sort_link(self, column: str) -> str:
        """The link a column header points at: sort by it, flipping the order when it
        is already the sort column."""
        descending = not self.descending if column == self.sort else False
        return self.link(sort=column, order="desc" if descending else "asc", page=1)

    def aria_sort(self, column: str) -> str:
        """The column's ``aria-sort`` value."""
        if column != self.sort:
            return "none"
        return "descending" if self.descending else "ascending"


def paged(
    rows: Sequence[Row],
    query: Mapping[str, str],
    columns: Sequence[Column],
    *,
    default: str,
    descending: bool = False,
    keep: Sequence[str] = (),
) -> Page[Row]:
    """``rows`` sorted by the query's ``sort`` column (``default`` when it names none
    of ``columns``) and ``order``, cut to its ``page``; ``keep`` names the query
    parameters (filters) every link carries on."""
    by_name = {c.name: c for c in columns}
    sort = query.get("sort", default)
    if sort not in by_name:
        sort = default
    order = query.get("order")
    desc = descending if order not in ("asc", "desc") else order == "desc"
    key = by_name[sort].key
    # None sorts last whichever the order: rows without the value are not the answer.
    present = [r for r in rows if key(r) is not None]
    missing = [r for r in rows if key(r) is None]
    ordered = sorted(present, key=key, reverse=desc) + missing
    pages = max(1, -(-len(ordered) // PAGE_SIZE))
    page = _page_number(query.get("page"), pages)
    start = (page - 1) * PAGE_SIZE
    kept = {name: query[name] for name in keep if query.get(name)}
    return Page(ordered[start : start + PAGE_SIZE], len(ordered), page, pages, sort, desc, kept)


def _page_number(text: str | None, pages: int) -> int:
    number = int(text) if text is not None and text.isdigit() else 1
    return min(max(number, 1), pages)
