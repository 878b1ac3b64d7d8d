"""Plain-text tables, and the ``Table`` record that also goes into the JSON output."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Table:
    """A titled table: ``columns`` names, ``rows`` of cells (numbers, strings or None), a BLAS tag and notes."""

    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    blas: str = ""
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: Any) -> None:
        self.rows.append(list(cells))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["records"] = [dict(zip(self.columns, row)) for row in self.rows]
        return d

    def render(self) -> str:
        cells = [[_fmt(c) for c in row] for row in self.rows]
        widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(self.columns)]
        numeric = [all(isinstance(row[i], (int, float)) or row[i] is None for row in self.rows) and i > 0
                   for i in range(len(self.columns))]

        def line(items: list[str]) -> str:
            return "  ".join(s.rjust(w) if num else s.ljust(w) for s, w, num in zip(items, widths, numeric)).rstrip()

        out = [f"{self.title}   [{self.blas}]" if self.blas else self.title]
        out.append(line(self.columns))
        out.append(line(["-" * w for w in widths]))
        out.extend(line(r) for r in cells)
        out.extend(f"  {n}" for n in self.notes)
        return "\n".join(out)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value == 0:
            return "0"
        a = abs(value)
        if a >= 1000:
            return f"{value:,.0f}"
        if a >= 100:
            return f"{value:.1f}"
        if a >= 10:
            return f"{value:.2f}"
        if a >= 0.01:
            return f"{value:.3f}"
        return f"{value:.2e}"
    return str(value)
