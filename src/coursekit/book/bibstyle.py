"""The bibliography style of the book: entries labelled the way the text cites them.

The chapters cite author-year (``{cite:p}`` renders "(LeCun et al., 1998)"), so the reference
list is sorted by author and year and labels each entry the same way, instead of numbering it.
:func:`register` makes the style known to pybtex as ``authoryear`` (formatting) and
``author_year`` (labels); the book's Sphinx extension (:mod:`coursekit.book.sphinx_site`) calls
it, and ``book/references.md`` asks for ``:style: authoryear``.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator

from pybtex.plugin import register_plugin
from pybtex.richtext import Text
from pybtex.style.formatting.plain import Style as PlainStyle
from pybtex.style.labels import BaseLabelStyle
from pybtex.style.sorting.author_year_title import SortingStyle as AuthorYearTitle

STYLE = "authoryear"
LABELS = "author_year"
SORTING = "author_year_plain"


def _plain(latex: str) -> str:
    """``G{\\"o}del`` -> ``Gödel``: the text a reader sees."""
    return Text.from_latex(latex).render_as("text")


def author_year(entry) -> str:
    """"LeCun et al., 1998", "Griewank and Walther, 2008", "Rosenblatt, 1958"."""
    persons = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [_plain(" ".join(p.prelast_names + p.last_names)) for p in persons]
    if not names:
        who = _plain(entry.fields.get("organization") or entry.fields.get("title") or entry.key)
    elif len(names) == 1:
        who = names[0]
    elif len(names) == 2:
        who = f"{names[0]} and {names[1]}"
    else:
        who = f"{names[0]} et al."
    return f"{who}, {entry.fields.get('year', 'n.d.')}"


class AuthorYearLabels(BaseLabelStyle):
    """Author-year labels; equal ones get a, b, c after the year, in the list's order."""

    def format_labels(self, sorted_entries: Iterable) -> Iterator[str]:
        labels = [author_year(entry) for entry in sorted_entries]
        total, seen = Counter(labels), Counter()
        for label in labels:
            if total[label] == 1:
                yield label
            else:
                seen[label] += 1
                yield label + "abcdefghijklmnopqrstuvwxyz"[seen[label] - 1]


class AuthorYearSorting(AuthorYearTitle):
    """pybtex's author-year-title order, on the names a reader sees: Gödel before Griewank."""

    def person_key(self, person) -> str:
        text = _plain(super().person_key(person))
        return "".join(c for c in unicodedata.normalize("NFKD", text)
                       if not unicodedata.combining(c)).lower()


class AuthorYearStyle(PlainStyle):
    """pybtex's plain entries, sorted by author, year and title, with author-year labels."""

    default_label_style = LABELS
    default_sorting_style = SORTING


def register() -> None:
    """Make both styles known to pybtex (and so to sphinxcontrib-bibtex). Idempotent."""
    for group, name, cls in (("pybtex.style.labels", LABELS, AuthorYearLabels),
                             ("pybtex.style.sorting", SORTING, AuthorYearSorting),
                             ("pybtex.style.formatting", STYLE, AuthorYearStyle)):
        register_plugin(group, name, cls, force=True)
