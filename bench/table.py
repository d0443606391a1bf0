"""Markdown tables for the benchmark scripts (bench/summary.py reads them back)."""

from __future__ import annotations


def print_table(header: tuple[str, ...], rows: list[list[str]]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
