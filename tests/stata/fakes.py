"""Stand-ins for Stata on a machine without it: a fake batch executable and a fake pystata.

Both act as Stata would at the boundary the harness uses: they read the do-file the harness wrote,
find the results path it names (``* mlmh-results: PATH``) and write a results file in the
harness's format. Nothing here runs Stata; the docs say so (docs/stata.md).
"""

from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path

PROBE = "mlmh-stata-results\t1\nmodel\tprobe\nmeta\tstata_version\t18\nmeta\tflavour\tMP\nend\tprobe\n"

SCRIPT = r'''#!{python}
import os, re, shutil, sys
args = sys.argv[1:]
assert args[:2] == ["-b", "do"], args
do = open(args[2]).read()
log = os.path.splitext(args[2])[0] + ".log"
mode = os.environ.get("FAKE_STATA_MODE", "ok")
results = re.search(r"^\* mlmh-results: (.+)$", do, re.M).group(1).strip()
if mode == "licence":
    open(log, "w").write("Stata/SE 18\nError: license not valid for this installation\nr(9);\n")
    sys.exit(0)
if mode == "stataerror" and "probe" not in do:
    open(log, "w").write(". mixed gcse lrt || school:\nvariable gcse not found\nr(111);\n")
    sys.exit(0)
if '"model" _tab "probe"' in do:
    open(results, "w").write({probe!r})
else:
    shutil.copy(os.environ["FAKE_STATA_RESULTS"], results)
open(log, "w").write("(batch run finished)\n")
'''


def fake_stata_executable(folder: Path, name: str = "stata-se") -> Path:
    """A ``stata-se`` that answers ``-b do file.do`` per $FAKE_STATA_MODE (ok|licence|stataerror)."""
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / name
    exe.write_text(SCRIPT.replace("{python}", sys.executable).replace("{probe!r}", repr(PROBE)))
    exe.chmod(0o755)
    return exe


class FakePystata:
    """``stata_setup`` + ``pystata.stata`` modules; ``run`` writes ``canned`` to the results path."""

    def __init__(self, canned: str = "", fail_config: str | None = None):
        self.canned = canned
        self.fail_config = fail_config
        self.configured: list[tuple[str, str]] = []
        self.ran: list[str] = []

    def modules(self) -> dict[str, types.ModuleType]:
        setup = types.ModuleType("stata_setup")

        def config(path: str, edition: str) -> None:
            if self.fail_config:
                raise SystemError(self.fail_config)
            self.configured.append((path, edition))

        setup.config = config  # type: ignore[attr-defined]
        stata = types.ModuleType("pystata.stata")

        def run(cmd: str, quietly: bool = False, echo=None, inline=None) -> None:
            self.ran.append(cmd)
            path = re.search(r"^\* mlmh-results: (.+)$", cmd, re.M).group(1).strip()
            text = PROBE if '"model" _tab "probe"' in cmd else self.canned
            Path(path).write_text(text)

        stata.run = run  # type: ignore[attr-defined]
        pkg = types.ModuleType("pystata")
        pkg.stata = stata  # type: ignore[attr-defined]
        return {"stata_setup": setup, "pystata": pkg, "pystata.stata": stata}


LAYOUT_LINE = re.compile(r'^file write mlmh_fh "layout" _tab `"(.*)"\' _n$', re.M)
MODEL_LINE = re.compile(r'^file write mlmh_fh "model" _tab `"(.*)"\' _n$', re.M)
SHA_LINE = re.compile(r'^file write mlmh_fh "meta" _tab "data_sha256" _tab `"(.*)"\' _n$', re.M)


def layouts_in(do_text: str) -> list[tuple[str, dict, str]]:
    """(spec id, layout, data sha) of every model block of a harness do-file."""
    return list(zip(MODEL_LINE.findall(do_text),
                    [json.loads(x) for x in LAYOUT_LINE.findall(do_text)],
                    SHA_LINE.findall(do_text)))
