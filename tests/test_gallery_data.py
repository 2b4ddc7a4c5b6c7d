"""The gallery's data registry (data/gallery.yaml): complete entries exported by R, and, where
the files have been exported (``mlm-harness data fetch --gallery``), the registered checksums and
shapes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import harness.datasets as ds

GALLERY = {n: e for n, e in ds.load_registry().items() if e.suite == "gallery"}


def test_gallery_entries_are_exported_by_r_and_checksummed() -> None:
    assert {"dyestuff", "dyestuff2", "penicillin", "pastes", "sleepstudy", "insteval", "cbpp",
            "verbagg", "grouseticks", "contraception"} <= set(GALLERY)
    for name, e in GALLERY.items():
        assert e.r_data is not None and e.url is None, name
        assert re.fullmatch(r"[0-9a-f]{64}", e.sha256), name
        assert e.rows > 0 and e.columns > 0, name
        assert e.file == f"{e.r_data[0]}_{e.r_data[1]}.csv", name


def test_exported_gallery_data_verify_and_have_the_registered_shape() -> None:
    rows = {r.name: r for r in ds.verify(suite="gallery")}
    present = [n for n, r in rows.items() if r.status == "ok"]
    if not present:
        pytest.skip("gallery data not exported here (mlm-harness data fetch --gallery, needs R)")
    assert all(r.status in ("ok", "missing") for r in rows.values()), \
        [(n, r.status) for n, r in rows.items()]
    for name in present:
        e = GALLERY[name]
        assert ds.load_dataset(name).frame.shape == (e.rows, e.columns), name


def test_gallery_specs_load_and_every_reference_key_exists_in_their_model() -> None:
    """Each gallery spec names a registered dataset (a gallery one, or a course file such as
    pupcross for the crossed binomial); where the data are here, every published value's key is
    one the model has (a key typo would stop the suite with exit 2)."""
    from harness.model_keys import reference_key_problems
    from harness.runner import prepare_data
    from harness.spec import load_specs

    specs = load_specs([Path(__file__).resolve().parents[1] / "specs" / "gallery"])
    assert len(specs) >= 15
    registered = ds.load_registry()
    exported = {r.name for suite in ("gallery", "course") for r in ds.verify(suite=suite)
                if r.status == "ok"}
    for path, spec in specs:
        assert spec.dataset in registered, path
        if spec.dataset in exported:
            assert reference_key_problems(spec, prepare_data(spec).frame) == [], path
