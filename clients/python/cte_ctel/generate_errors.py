"""Writes `_errors.py`, the table of refusal classes, from a live server's error catalog.

The catalog (`cte_ctel.cte_error_catalog()`) is the source of truth for reasons and their
SQLSTATEs; this module turns it into Python text so the table is committed, reviewed in diffs and
importable without a server. `tests/test_errors.py` fails when the committed module and the live
catalog disagree: run this again after the extension gains a reason.

Usage: python3 -m cte_ctel.generate_errors DSN [OUTPUT]   (OUTPUT defaults to the package's
_errors.py; "-" prints it)
"""

from __future__ import annotations

import pathlib
import sys
import textwrap

import psycopg

HEADER = '''"""Refusal classes, one per reason of cte_ctel's error catalog. GENERATED: do not edit.

Made by `python3 -m cte_ctel.generate_errors DSN` from `cte_ctel.cte_error_catalog()`;
`tests/test_errors.py` checks it against the live catalog.
"""

from cte_ctel._base import Refused

'''


def class_name(reason: str) -> str:
    """`insufficient_funds` -> `InsufficientFunds`."""
    return "".join(word.capitalize() for word in reason.split("_"))


def read_catalog(conninfo: str) -> list[tuple[str, str, str]]:
    """The catalog's rows (reason, sqlstate, example message), ordered by SQLSTATE."""
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute(
            "SELECT reason, sqlstate, example_message FROM cte_ctel.cte_error_catalog()"
            " ORDER BY sqlstate").fetchall()
    return [(str(reason), str(sqlstate), str(example)) for reason, sqlstate, example in rows]


def render(catalog: list[tuple[str, str, str]]) -> str:
    """The module's text for a catalog: a class per reason, then the lookup table."""
    assert len(catalog) > 0, "the catalog is never empty"
    parts = [HEADER]
    for reason, sqlstate, example in catalog:
        assert class_name(reason).isidentifier(), reason
        parts.append(
            f"\nclass {class_name(reason)}(Refused):\n"
            f"    {_docstring(f'{sqlstate} {reason}, e.g. {example}')}\n\n"
            f"    sqlstate = {sqlstate!r}\n"
            f"    reason = {reason!r}\n\n")
    parts.append("\n# reason -> (SQLSTATE, class), in SQLSTATE order.\nCATALOG = {\n")
    for reason, sqlstate, _ in catalog:
        parts.append(f"    {reason!r}: ({sqlstate!r}, {class_name(reason)}),\n")
    parts.append("}\n")
    return "".join(parts)


def _docstring(text: str) -> str:
    """A docstring within 100 columns that is valid Python whatever the example holds."""
    flat = " ".join(text.split())
    if '"""' in flat or "\\" in flat or flat.endswith('"'):
        return repr(flat)
    lines = textwrap.wrap(flat, width=88)
    return '"""' + "\n    ".join(lines) + '"""'


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    text = render(read_catalog(argv[1]))
    output = argv[2] if len(argv) == 3 else str(pathlib.Path(__file__).with_name("_errors.py"))
    if output == "-":
        sys.stdout.write(text)
    else:
        pathlib.Path(output).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
