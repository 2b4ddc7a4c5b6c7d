"""JUnit XML for CI: one testcase per spec x comparison (a pair of backends, or a backend and a
printed reference), written as ``junit.xml`` next to the HTML report.

* a comparison with an unexplained difference is a ``<failure>`` whose text lists the differing
  rows (key, both values, difference, tolerance, digits);
* a backend that errored is an ``<error>``; one that is unavailable or cannot fit the model
  (``not_estimable``), and a reference with no backend to check against, are ``<skipped>``;
* explained differences pass, and are listed in ``<system-out>`` so they stay visible.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from itertools import combinations

from harness.compare import Check, SpecComparison


# Characters XML 1.0 cannot hold even escaped (control characters other than tab, newline and
# carriage return; lone surrogates; U+FFFE/U+FFFF). An R error message can carry ANSI colour
# codes (ESC), and one of them made the whole junit.xml unreadable to CI.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    """``text`` with every character XML cannot hold written as a visible escape (``\\x1b``)."""
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                        else f"\\u{ord(m.group()):04x}", text)


def _row(c: Check) -> str:
    return (f"{c.key} ({c.quantity}): {c.source_a} {c.value_a:.10g} vs {c.source_b} "
            f"{c.value_b:.10g}; |diff| {c.abs_diff:.3g} > tolerance {c.tolerance:.3g} "
            f"({c.tolerance_rule}); {c.digits:.1f} digits agree")


def comparison_cases(comp: SpecComparison) -> list[dict]:
    """The testcases of one spec as dicts: name, outcome, message, text (shared with pytest)."""
    cases = []
    ok = [s.source for s in comp.sources if s.kind == "backend" and s.status not in
          ("error", "unavailable", "not_estimable", "pending")]
    for s in comp.sources:
        if s.kind != "backend":
            continue
        if s.status in ("error", "unavailable", "not_estimable", "pending"):
            outcome = "error" if s.status == "error" else "skipped"
            cases.append({"name": f"{s.source} fit", "outcome": outcome,
                          "message": f"{s.source} {s.status}: {s.message}", "text": s.message,
                          "checks": []})
        else:
            r = comp.results.get(s.source)
            method = r.provenance.method if r is not None else ""
            cases.append({"name": f"{s.source} fit", "outcome": "passed", "checks": [],
                          "text": "", "message": f"{s.source} fitted ({method})"})
    pairs = list(combinations(ok, 2)) + [(b, s.source) for s in comp.sources
                                         if s.kind == "reference" for b in ok]
    for a, b in pairs:
        checks = [c for c in comp.checks if {c.source_a, c.source_b} == {a, b}]
        cases.append(case_for(f"{a} vs {b}", checks))
    for b in ok:  # cross-spec identities (replication): source_b is "<backend>@<spec> (xN)"
        cross = [c for c in comp.checks if c.source_a == b and c.source_b.kind == "crosscheck"]
        if cross:
            cases.append(case_for(f"{b} vs {cross[0].source_b}", cross))
    for s in comp.sources:
        if s.kind == "reference" and not ok:
            cases.append({"name": f"{s.source}", "outcome": "skipped",
                          "message": "no backend result to check against", "text": "",
                          "checks": []})
    return cases


def case_for(name: str, checks: list[Check]) -> dict:
    bad = [c for c in checks if c.verdict == "unexplained"]
    explained = [c for c in checks if c.verdict == "explained"]
    if not checks:
        return {"name": name, "outcome": "skipped", "checks": [], "text": "",
                "message": "no quantity in common to compare"}
    out = "\n".join(f"explained: {_row(c)} — {c.explanation}" for c in explained)
    if bad:
        return {"name": name, "outcome": "failure", "checks": checks,
                "message": f"{len(bad)} unexplained difference(s) of {len(checks)} checks",
                "text": "\n".join(_row(c) for c in bad), "out": out}
    return {"name": name, "outcome": "passed", "checks": checks, "out": out, "text": "",
            "message": f"{len(checks)} checks: {len(checks) - len(explained)} agree, "
                       f"{len(explained)} explained"}


def junit_xml(comparisons: list[SpecComparison], suite_name: str = "mlm-harness") -> str:
    root = ET.Element("testsuites", name=suite_name)
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for comp in comparisons:
        cases = comparison_cases(comp)
        suite = ET.SubElement(root, "testsuite", name=xml_safe(comp.spec.id))
        counts = {"tests": len(cases),
                  "failures": sum(c["outcome"] == "failure" for c in cases),
                  "errors": sum(c["outcome"] == "error" for c in cases),
                  "skipped": sum(c["outcome"] == "skipped" for c in cases)}
        for k, v in counts.items():
            suite.set(k, str(v))
            totals[k] += v
        for c in cases:
            tc = ET.SubElement(suite, "testcase", classname=xml_safe(comp.spec.id),
                               name=xml_safe(c["name"]))
            if c["outcome"] in ("failure", "error", "skipped"):
                el = ET.SubElement(tc, c["outcome"], message=xml_safe(c["message"]))
                if c.get("text"):
                    el.text = xml_safe(c["text"])
            if c.get("out"):
                ET.SubElement(tc, "system-out").text = xml_safe(c["out"])
    for k, v in totals.items():
        root.set(k, str(v))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
