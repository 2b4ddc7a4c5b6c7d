"""The command line never ends in a traceback: closed pipes, bad arguments, unwritable places,
control characters in messages, and do-files that would be overwritten."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from harness.cli import main
from harness.compare import compare_spec
from harness.junit import junit_xml, xml_safe
from harness.results import FitResult
from harness.spec import parse_spec

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def test_a_closed_pipe_is_not_a_traceback() -> None:
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", f"{sys.executable} -m harness.cli list | head -1"],
        env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 1
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


@pytest.mark.parametrize("argv,words", [
    (["run", "--jobs", "abc"], "invalid int value"),
    (["run", "--backends", "spss"], "unknown backend"),
    (["show"], "the following arguments are required"),
    (["fit", "gcse", "gcse ~"], "formula"),
    (["nosuchcommand"], "invalid choice"),
    (["run", "no/such/specs"], "no such file or folder"),
])
def test_bad_arguments_are_exit_2_without_a_traceback(argv, words, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_an_out_that_is_a_file_is_exit_2(tmp_path, capsys) -> None:
    f = tmp_path / "report.txt"
    f.write_text("mine")
    spec = REPO / "specs" / "gcse" / "lab1.ex1.1.lin1.yaml"
    assert main(["run", str(spec), "--backends", "native", "--out", str(f)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert f.read_text() == "mine"


def test_a_report_folder_that_cannot_be_made_is_exit_2_naming_it(tmp_path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    spec = REPO / "specs" / "gcse" / "lab1.ex1.1.lin1.yaml"
    assert main(["run", str(spec), "--backends", "native", "--out", str(blocker / "r")]) == 2
    err = capsys.readouterr().err
    assert str(blocker / "r") in err and "Traceback" not in err


def test_an_unwritable_report_folder_is_exit_2_naming_it(tmp_path, capsys) -> None:
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    spec = REPO / "specs" / "gcse" / "lab1.ex1.1.lin1.yaml"
    try:
        assert main(["run", str(spec), "--backends", "native", "--out", str(ro / "r")]) == 2
    finally:
        ro.chmod(0o700)
    assert str(ro / "r") in capsys.readouterr().err


def test_stata_export_refuses_to_overwrite_without_asking(tmp_path, capsys) -> None:
    out = tmp_path / "suite.do"
    out.write_text("* my edits")
    spec = REPO / "specs" / "gcse" / "lab1.ex1.1.lin1.yaml"
    assert main(["stata", "export", str(spec), "--out", str(out)]) == 2
    assert "pass --overwrite" in capsys.readouterr().err and out.read_text() == "* my edits"
    assert main(["stata", "export", str(spec), "--out", str(out), "--overwrite"]) == 0
    assert "lab1.ex1.1.lin1" in out.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["suite.do"]  # no temporary file left


def test_junit_stays_well_formed_with_any_control_character() -> None:
    spec = parse_spec({"id": "ctl", "title": "t", "source": "s", "dataset": "gcse",
                       "model": {"formula": "gcse ~ lrt + (1 | school)", "method": "ML"}})
    nasty = "R said: \x1b[31mError\x1b[0m\x00\x07\x0b\x0c\ud800\ufffe end\ttab\nline"
    comp = compare_spec(spec, {"native": FitResult.failed("ctl", "native", "error", nasty),
                               "lme4": FitResult.failed("ctl", "lme4", "error", nasty)})
    text = junit_xml([comp])
    root = ET.fromstring(text.encode("utf-8", "surrogatepass"))  # parses: well-formed
    messages = [e.get("message") for e in root.iter("error")]
    assert messages and all("\\x1b[31mError" in m and "\\x00" in m for m in messages)
    assert all(ord(c) >= 0x20 or c in "\t\n\r" for c in text)
    assert xml_safe("tab\tnewline\n é 😀") == "tab\tnewline\n é 😀"


def test_every_control_character_survives_a_round_trip() -> None:
    for code in list(range(0x20)) + [0xFFFE, 0xFFFF, 0xD800]:
        el = ET.Element("x", message=xml_safe(f"a{chr(code)}b"))
        el.text = xml_safe(f"c{chr(code)}d")
        ET.fromstring(ET.tostring(el, encoding="unicode").encode("utf-8", "surrogatepass"))


def test_specs_with_colliding_report_names_are_exit_2(tmp_path, capsys) -> None:
    base = yaml.safe_load((REPO / "specs" / "gcse" / "lab1.ex1.1.lin1.yaml").read_text())
    for name, sid in (("one.yaml", "a/b"), ("two.yaml", "a_b")):
        (tmp_path / name).write_text(yaml.safe_dump({**base, "id": sid}))
    assert main(["run", str(tmp_path), "--backends", "native", "--out",
                 str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "would write the same report page 'a_b.html'" in err
