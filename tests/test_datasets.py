"""Tests for the dataset registry, lookup, fetch, verify and readers (harness/datasets.py).

Lookup, fetch and checksum tests use a small fake registry in tmp_path, so they run anywhere.
Tests that read the course files skip when the course data folder is absent ($MLM_HARNESS_DATA,
else the user cache; tests/conftest.py).
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from harness import datasets as ds
from tests.conftest import course_data_dir, no_data_reason

COURSE_DIR = course_data_dir() or Path("(no course data folder)")
needs_course = pytest.mark.skipif(course_data_dir() is None, reason=no_data_reason())

CSV_BYTES = b"g,y\n1,0.5\n1,1.5\n2,2.5\n"


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """No test sees the user's real cache, environment variable or earlier caches."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(ds.ENV_VAR, raising=False)
    ds.clear_caches()
    yield
    ds.clear_caches()


@pytest.fixture
def fake_registry(tmp_path, monkeypatch) -> dict:
    """A registry with one small CSV dataset 'toy' whose source is a file:// URL."""
    src = tmp_path / "source"
    src.mkdir()
    (src / "toy.csv").write_bytes(CSV_BYTES)
    entry = {"file": "toy.csv", "sha256": hashlib.sha256(CSV_BYTES).hexdigest(),
             "url": (src / "toy.csv").as_uri(), "licence": "test", "description": "toy",
             "rows": 3, "columns": 2}
    reg = tmp_path / "registry.yaml"
    reg.write_text(yaml.safe_dump({"schema_version": 1, "datasets": {"toy": entry}}))
    monkeypatch.setattr(ds, "REGISTRY_PATH", reg)
    return entry


def _put(folder: Path, data: bytes = CSV_BYTES, name: str = "toy.csv") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return folder / name


# --- registry -----------------------------------------------------------------------------------

def test_registry_lists_all_six_with_complete_entries():
    reg = {n: e for n, e in ds.load_registry().items() if e.suite == "course"}
    assert list(reg) == ["gcse", "popular2", "nurses", "pupcross", "census", "census_sav"]
    assert reg["census"].file == "censusmicroteaching11s.dta"
    assert reg["census_sav"].file == "censusmicroteaching11s.sav"
    assert reg["gcse"].sha256 == "eba1620923ee7cb28d25e0a564974bfd74cbdd5958a60aae1299b0351d4fd42b"
    base = "https://raw.githubusercontent.com/paul-lambert/SGSSS-2025/main/data"
    for e in reg.values():
        assert e.url == f"{base}/{e.file}"
        assert len(e.sha256) == 64 and e.licence and e.description and e.rows > 0 and e.columns > 0


def test_registry_file_sits_in_the_repository_not_in_data_files():
    assert ds.REGISTRY_PATH == ds.REPO_ROOT / "data" / "registry.yaml"
    assert not list((ds.REPO_ROOT / "data").glob("*.dta"))


def test_an_installed_package_carries_the_registry():
    """A non-editable install has no data/ folder: harness/registry.yaml (a symlink here, a file
    in the wheel) must be the same registry and be declared as package data."""
    import tomllib

    packaged = ds.REPO_ROOT / "harness" / "registry.yaml"
    assert packaged.read_bytes() == ds.REGISTRY_PATH.read_bytes()
    config = tomllib.loads((ds.REPO_ROOT / "pyproject.toml").read_text())
    assert "registry.yaml" in config["tool"]["setuptools"]["package-data"]["harness"]


# --- lookup -------------------------------------------------------------------------------------

def test_lookup_order_data_dir_then_env_then_cache(fake_registry, tmp_path, monkeypatch):
    cache = _put(ds.cache_dir())
    assert ds.locate("toy") == cache
    env = _put(tmp_path / "env")
    monkeypatch.setenv(ds.ENV_VAR, str(tmp_path / "env"))
    assert ds.locate("toy") == env
    explicit = _put(tmp_path / "explicit")
    assert ds.locate("toy", data_dir=tmp_path / "explicit") == explicit
    assert ds.load_dataset("toy", data_dir=tmp_path / "explicit").path == explicit


def test_folder_with_is_the_first_place_holding_every_file(tmp_path, monkeypatch):
    (ds.cache_dir()).mkdir(parents=True)
    for f in ("a.dta", "b.dta"):
        (ds.cache_dir() / f).write_bytes(b"x")
    env = tmp_path / "env"
    env.mkdir()
    (env / "a.dta").write_bytes(b"x")
    monkeypatch.setenv(ds.ENV_VAR, str(env))
    assert ds.folder_with(["a.dta"]) == env
    assert ds.folder_with(["a.dta", "b.dta"]) == ds.cache_dir()  # env lacks b.dta
    assert ds.folder_with(["a.dta", "c.dta"]) is None
    assert ds.folder_with(["a.dta"], data_dir=tmp_path / "none") == env


def test_cache_dir_without_xdg_is_under_home(monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert ds.cache_dir() == tmp_path / ".cache" / "mlm-harness" / "data"


def test_missing_file_error_names_every_place_and_the_fetch_command(fake_registry, tmp_path,
                                                                     monkeypatch):
    monkeypatch.setenv(ds.ENV_VAR, str(tmp_path / "env"))
    with pytest.raises(ds.DatasetError) as err:
        ds.load_dataset("toy", data_dir=tmp_path / "explicit")
    msg = str(err.value)
    assert "'toy'" in msg
    for folder in (tmp_path / "explicit", tmp_path / "env", ds.cache_dir()):
        assert str(folder / "toy.csv") in msg
    assert "mlm-harness data fetch toy" in msg


def test_unknown_name_lists_the_registry(fake_registry):
    with pytest.raises(ds.DatasetError, match="unknown dataset 'nope'.*toy"):
        ds.load_dataset("nope")


def test_checksum_mismatch_is_an_error_naming_file_and_both_sums(fake_registry, tmp_path):
    bad = _put(tmp_path / "d", b"g,y\n1,9\n")
    with pytest.raises(ds.DatasetError) as err:
        ds.load_dataset("toy", data_dir=tmp_path / "d")
    msg = str(err.value)
    assert str(bad) in msg and fake_registry["sha256"] in msg
    assert hashlib.sha256(b"g,y\n1,9\n").hexdigest() in msg


def test_a_bad_file_earlier_in_the_order_is_not_skipped(fake_registry, tmp_path):
    _put(ds.cache_dir())
    _put(tmp_path / "d", b"tampered")
    with pytest.raises(ds.DatasetError, match="checksum mismatch"):
        ds.load_dataset("toy", data_dir=tmp_path / "d")


def test_checksums_are_cached_by_path_size_and_mtime(tmp_path, monkeypatch):
    f = _put(tmp_path)
    calls = []
    real = hashlib.sha256
    monkeypatch.setattr(ds.hashlib, "sha256", lambda *a: calls.append(1) or real(*a))
    first = ds.sha256_file(f)
    assert ds.sha256_file(f) == first and len(calls) == 1
    f.write_bytes(b"other content, other size")
    assert ds.sha256_file(f) != first and len(calls) == 2


# --- paths instead of names ---------------------------------------------------------------------

def test_a_path_works_in_place_of_a_name(fake_registry, tmp_path):
    f = _put(tmp_path / "mine", name="own.csv")
    loaded = ds.load_dataset(str(f))
    assert loaded.entry is None and loaded.path == f
    assert loaded.sha256 == hashlib.sha256(CSV_BYTES).hexdigest()
    assert loaded.frame.shape == (3, 2) and loaded.frame["y"].dtype == np.float64
    with pytest.raises(ds.DatasetError, match="no such data file"):
        ds.load_dataset(str(tmp_path / "absent.csv"))


def test_loaded_frames_are_copies_of_the_cache(fake_registry, tmp_path):
    _put(tmp_path / "d")
    a = ds.load_dataset("toy", data_dir=tmp_path / "d")
    a.frame["new"] = 1
    b = ds.load_dataset("toy", data_dir=tmp_path / "d")
    assert "new" not in b.frame and b.entry is not None and b.entry.name == "toy"


# --- fetch --------------------------------------------------------------------------------------

def test_fetch_from_file_url_writes_and_verifies(fake_registry):
    [path] = ds.fetch(["toy"])
    assert path == ds.cache_dir() / "toy.csv" and path.read_bytes() == CSV_BYTES
    assert ds.load_dataset("toy").frame.shape == (3, 2)


def test_fetch_keeps_a_verified_file_unless_forced(fake_registry, tmp_path):
    calls = []

    def opener(url):
        calls.append(url)
        return io.BytesIO(CSV_BYTES)

    dest = tmp_path / "dest"
    ds.fetch(None, dest, opener=opener)
    ds.fetch(None, dest, opener=opener)
    assert len(calls) == 1
    ds.fetch(["toy"], dest, force=True, opener=opener)
    assert len(calls) == 2


def test_corrupted_download_is_rejected_and_leaves_no_file(fake_registry, tmp_path, monkeypatch):
    monkeypatch.setattr(ds, "URL_OPENER", lambda url: io.BytesIO(b"corrupted"))
    dest = tmp_path / "dest"
    with pytest.raises(ds.DatasetError, match="failed verification") as err:
        ds.fetch(["toy"], dest)
    assert hashlib.sha256(b"corrupted").hexdigest() in str(err.value)
    assert list(dest.iterdir()) == []


def test_fetch_refuses_to_overwrite_an_unverified_file_without_force(fake_registry, tmp_path):
    dest = tmp_path / "dest"
    _put(dest, b"user's own edit")
    with pytest.raises(ds.DatasetError, match="checksum mismatch"):
        ds.fetch(["toy"], dest)
    assert (dest / "toy.csv").read_bytes() == b"user's own edit"
    ds.fetch(["toy"], dest, force=True)
    assert (dest / "toy.csv").read_bytes() == CSV_BYTES


def test_network_failure_is_a_dataset_error(fake_registry, tmp_path):
    def offline(url):
        raise OSError("no route to host")

    with pytest.raises(ds.DatasetError, match="cannot download dataset 'toy'"):
        ds.fetch(["toy"], tmp_path / "dest", opener=offline)
    assert list((tmp_path / "dest").iterdir()) == []


# --- verify -------------------------------------------------------------------------------------

def test_verify_rows_report_ok_missing_and_mismatch(fake_registry, tmp_path):
    [row] = ds.verify(tmp_path / "d")
    assert row.status == "missing" and row.path is None and row.actual_sha256 is None
    assert tmp_path / "d" / "toy.csv" in row.searched
    good = _put(tmp_path / "d")
    [row] = ds.verify(tmp_path / "d")
    assert (row.status, row.path, row.actual_sha256) == ("ok", good, fake_registry["sha256"])
    ds.clear_caches()
    _put(tmp_path / "d", b"changed")
    [row] = ds.verify(tmp_path / "d")
    assert row.status == "mismatch" and row.expected_sha256 == fake_registry["sha256"]
    assert "mismatch" in ds.format_verify([row])


# --- readers ------------------------------------------------------------------------------------

def test_normalise_numeric_widens_float32_exactly_and_makes_int64():
    df = pd.DataFrame({"f": np.array([36.66], dtype=np.float32), "i": np.array([3], np.int8),
                       "n": pd.array([1], dtype="Int32"), "s": ["a"]})
    out = ds.normalise_numeric(df)
    assert out["f"].dtype == np.float64 and out["f"].iloc[0] == 36.65999984741211
    assert out["i"].dtype == np.int64 and out["n"].dtype == np.float64
    assert out["s"].tolist() == ["a"]


def test_unsupported_file_type(tmp_path):
    _put(tmp_path, b"x", name="data.xlsx")
    with pytest.raises(ds.DatasetError, match="unsupported file type"):
        ds.read_table(tmp_path / "data.xlsx")


@needs_course
def test_gcse_shape_dtypes_and_exact_float_widening():
    loaded = ds.load_dataset("gcse", data_dir=COURSE_DIR)
    df = loaded.frame
    assert df.shape == (4059, 9) == (loaded.entry.rows, loaded.entry.columns)
    assert all(t == np.float64 for t in df.dtypes)
    # Stata float storage widened exactly, not rounded to the printed digits
    assert (df["gcse"].astype(np.float32).astype(np.float64) == df["gcse"]).all()
    assert df["gcse"].iloc[0] == float(np.float32(2.6132)) != 2.6132
    assert loaded.sha256 == loaded.entry.sha256


@needs_course
def test_labels_are_kept_as_metadata_never_applied():
    loaded = ds.load_dataset("popular2", data_dir=COURSE_DIR)
    sex = loaded.frame["sex"]
    assert sex.dtype == np.float64 and set(sex.unique()) == {0.0, 1.0}
    assert loaded.value_labels["sex"] == {0: "boy", 1: "girl"}
    assert loaded.variable_labels["sex"] == "pupil sex"
    assert loaded.labels["values"]["sex"] == {0: "boy", 1: "girl"}


@needs_course
def test_census_dta_keeps_minus_nine_as_a_labelled_value():
    loaded = ds.load_dataset("census", data_dir=COURSE_DIR)
    df = loaded.frame
    assert df.shape == (63388, 16) and all(t == np.int64 for t in df.dtypes)
    assert (df["indus1ts"] == -9).sum() == 14435 and -9 in loaded.value_labels["indus1ts"]


@needs_course
def test_census_sav_user_missing_default_keeps_values_and_records_declarations():
    dta = ds.load_dataset("census", data_dir=COURSE_DIR).frame
    sav = ds.load_dataset("census_sav", data_dir=COURSE_DIR)
    assert sav.spss_user_missing == "as_values"
    assert set(sav.user_missing) == {"aprxsocgr", "econac1t", "famcomp", "indus1ts", "numhrs",
                                     "occupat1t"}
    assert sav.user_missing["indus1ts"] == [{"lo": -9.0, "hi": -9.0}]
    assert (sav.frame["indus1ts"] == -9).sum() == 14435
    assert not sav.frame.isna().any().any()
    assert (sav.frame.astype(np.int64) == dta).all().all()


@needs_course
def test_census_sav_as_missing_turns_declared_codes_into_nan():
    sav = ds.load_dataset("census_sav", data_dir=COURSE_DIR, spss_user_missing="as_missing")
    df = sav.frame
    assert df["indus1ts"].isna().sum() == 14435 and not (df == -9).any().any()
    assert df["sex"].notna().all()
    assert set(sav.user_missing) >= {"indus1ts", "occupat1t"}
    # the default-rule frame in the in-process cache is not affected
    assert (ds.load_dataset("census_sav", data_dir=COURSE_DIR).frame["indus1ts"] == -9).any()


@needs_course
def test_every_registry_dataset_verifies_and_has_the_registered_shape():
    rows = ds.verify(COURSE_DIR)
    assert [r.status for r in rows] == ["ok"] * 6
    for name, entry in ds.load_registry().items():
        if entry.suite != "course":
            continue  # the gallery's datasets: tests/test_gallery_data.py
        assert ds.load_dataset(name, data_dir=COURSE_DIR).frame.shape == (entry.rows,
                                                                           entry.columns)


@needs_course
def test_course_path_in_place_of_name(tmp_path):
    loaded = ds.load_dataset(str(COURSE_DIR / "nurses.dta"))
    assert loaded.entry is None and loaded.frame.shape == (1000, 20)
    assert loaded.sha256 == ds.load_registry()["nurses"].sha256
