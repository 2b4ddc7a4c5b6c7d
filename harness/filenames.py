"""File names made from spec ids, in one place, so the loader can refuse ids that would collide.

A spec id may hold ``/`` and ``.``; file names may not hold ``/``, so each output that is named
after a spec maps its id to a safe stem. Two different ids can map to the same stem (``a/b``
and ``a_b`` both give the report page ``a_b.html``), and on a case-insensitive file system
(macOS, Windows) ``A`` and ``a`` are one file; :func:`harness.spec.load_specs` refuses such
pairs, using :func:`output_names`.
"""

from __future__ import annotations


def report_stem(spec_id: str) -> str:
    """The stem of a spec's report page ``specs/<stem>.html`` and results folder
    ``results/<stem>/``: every character other than letters, digits and ``._-`` becomes ``_``."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in spec_id)


def stored_stem(spec_id: str) -> str:
    """The stem of a stored Stata result ``<stem>.json`` (``/`` becomes ``__``)."""
    return spec_id.replace("/", "__")


def output_names(spec_id: str) -> dict[str, str]:
    """Every file name written for ``spec_id``, by what it is (for collision checks)."""
    return {"report page": report_stem(spec_id) + ".html",
            "stored Stata result": stored_stem(spec_id) + ".json"}
