"""The dataset registry, lookup, download, checksum verification and file readers.

Specs name a dataset (``dataset: gcse``) or give a path to a data file (relative to the spec's
folder). Course datasets are listed in ``data/registry.yaml`` and the gallery's (the field's
standard problems, shipped by R packages) in ``data/gallery.yaml``, each with its SHA-256; the
files are never committed, so they are looked up on the user's machine and verified before use,
because a comparison of estimates across packages means nothing unless every package saw the
very same bytes. A course file is downloaded from its URL; a gallery file is exported by R from
the package that ships it (:mod:`harness.rdata`), then checked the same way.

Lookup order for a registry name (first folder that holds the file wins):

1. the ``data_dir`` argument (the CLI's ``--data-dir``);
2. the folder in the environment variable ``MLM_HARNESS_DATA``;
3. the per-user cache, ``$XDG_CACHE_HOME/mlm-harness/data`` or ``~/.cache/mlm-harness/data``
   (where ``mlm-harness data fetch`` puts files).

A file found in an earlier place that fails its checksum is an error; the lookup does not fall
through to a later place, because silently using a different copy than the one the user pointed at
would hide the problem.

Reading keeps labels as metadata and never applies them (see :func:`read_table`), and SPSS
user-missing codes are kept as values by default (see :data:`SPSS_USER_MISSING_RULES`).
"""

from __future__ import annotations

import copy
import hashlib
import os
import tempfile
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
import pandas as pd
import yaml

import harness

REPO_ROOT = Path(harness.__file__).resolve().parents[1]


def _registry_file(name: str) -> Path:
    """data/<name> in a checkout; an installed (non-editable) package has no data/ folder and
    reads its own copy, harness/<name> (a symlink in the repository that the wheel build turns
    into a file; pyproject.toml package-data)."""
    return next((p for p in (REPO_ROOT / "data" / name,
                             Path(harness.__file__).resolve().parent / name)
                 if p.is_file()), REPO_ROOT / "data" / name)


REGISTRY_PATH = _registry_file("registry.yaml")
GALLERY_REGISTRY_PATH = _registry_file("gallery.yaml")
SUITES = ("course", "gallery")
"""The suites whose datasets the registries list (:func:`suite_registry`); names are unique
across them."""


def suite_registry(suite: str) -> Path:
    """The registry file of ``suite``: data/registry.yaml (course), data/gallery.yaml. Looked
    up when called, so a test that points REGISTRY_PATH elsewhere moves the course's registry."""
    return {"course": REGISTRY_PATH, "gallery": GALLERY_REGISTRY_PATH}[suite]


ENV_VAR = "MLM_HARNESS_DATA"
FETCH_COMMAND = "mlm-harness data fetch"
DOWNLOAD_TIMEOUT_S = 60.0

SpssUserMissing = Literal["as_values", "as_missing"]
SPSS_USER_MISSING_RULES: tuple[str, ...] = ("as_values", "as_missing")
"""How SPSS user-missing codes are read.

``as_values`` (the default) keeps the declared codes (e.g. -9) as ordinary numbers, which is what
Stata, R's ``haven::read_sav(user_na = TRUE)`` and the course's .dta files give; ``as_missing``
turns them into NaN, as SPSS itself and ``pyreadstat``'s own default do. Either way the declared
codes are recorded in :attr:`LoadedData.user_missing`. The default is ``as_values`` because the
course's census .sav declares -9 ("no code required") as user-missing: honouring it would make
14,435 persons' industry and occupation missing and change the groupings the course builds from
the .dta, where -9 is an ordinary labelled value.
"""

READERS = (".dta", ".sav", ".zsav", ".csv", ".csv.gz", ".tsv", ".tsv.gz", ".parquet",
           ".feather", ".rds")
"""The file types read, by how the file's name ends (``.parquet`` and ``.feather`` need pyarrow,
the ``parquet`` extra; ``.rds`` needs R)."""
_CHUNK = 1 << 20


class DatasetError(Exception):
    """A dataset that cannot be found, verified, fetched or read; the message says what to do."""


# --------------------------------------------------------------------------------------------
# Registry


@dataclass(frozen=True)
class RegistryEntry:
    """One dataset as listed in a registry: fetched from ``url``, or exported by R from the
    package that ships it (``r_data``: package and dataset name)."""

    name: str
    file: str
    sha256: str
    url: str | None
    licence: str
    description: str
    rows: int
    columns: int
    size_bytes: int | None = None
    r_data: tuple[str, str] | None = None
    suite: str = "course"

    @property
    def source(self) -> str:
        """Where the file comes from, for messages."""
        if self.r_data:
            return f"R's data({self.r_data[1]}, package = \"{self.r_data[0]}\")"
        return str(self.url)


_REQUIRED_KEYS = ("file", "sha256", "licence", "description", "rows", "columns")
_registry_cache: dict[tuple[str, int], dict[str, RegistryEntry]] = {}


def load_registry(path: str | Path | None = None) -> dict[str, RegistryEntry]:
    """Read a registry file, or (by default) every suite's registry (:data:`SUITES`), keyed by
    name; a name listed twice is an error.

    Parsed once per file version (path and mtime), since every dataset load consults it.
    """
    if path is not None:
        return _registry_file(Path(path), "course")
    merged: dict[str, RegistryEntry] = {}
    for suite in SUITES:
        file = suite_registry(suite)
        if suite != "course" and not file.exists():
            continue
        for name, entry in _registry_file(file, suite).items():
            if name in merged:
                raise DatasetError(f"{file}: dataset {name!r} is also listed in "
                                   f"{suite_registry(merged[name].suite)}; names must be unique")
            merged[name] = entry
    return merged


def _registry_file(path: Path, suite: str) -> dict[str, RegistryEntry]:
    try:
        key = (str(path), path.stat().st_mtime_ns)
    except OSError as e:
        raise DatasetError(f"cannot read the dataset registry {path}: {e.strerror}") from None
    if key not in _registry_cache:
        _registry_cache[key] = {n: replace(e, suite=suite)
                                for n, e in _parse_registry(path).items()}
    return dict(_registry_cache[key])


def _parse_registry(path: Path) -> dict[str, RegistryEntry]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise DatasetError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("datasets"), dict):
        raise DatasetError(f"{path}: expected a mapping with a 'datasets:' mapping inside")
    entries = {}
    for name, raw in data["datasets"].items():
        entries[str(name)] = _parse_entry(path, str(name), raw)
    return entries


def _parse_entry(path: Path, name: str, raw: Any) -> RegistryEntry:
    if not isinstance(raw, dict):
        raise DatasetError(f"{path}: datasets.{name} must be a mapping")
    missing = [k for k in _REQUIRED_KEYS if k not in raw]
    if missing:
        raise DatasetError(f"{path}: datasets.{name} lacks {', '.join(missing)}")
    unknown = sorted(set(raw) - set(_REQUIRED_KEYS) - {"size_bytes", "url", "r_data"})
    if unknown:
        raise DatasetError(f"{path}: datasets.{name} has unknown key(s) {', '.join(unknown)}")
    if ("url" in raw) == ("r_data" in raw):
        raise DatasetError(f"{path}: datasets.{name} needs exactly one of url (a download) or "
                           "r_data ({package: ..., name: ...}, exported by R)")
    r_data = None
    if "r_data" in raw:
        spec = raw["r_data"]
        if not (isinstance(spec, dict) and set(spec) == {"package", "name"}):
            raise DatasetError(f"{path}: datasets.{name}.r_data must be "
                               "{package: <R package>, name: <dataset>}")
        r_data = (str(spec["package"]), str(spec["name"]))
    sha = str(raw["sha256"]).lower()
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise DatasetError(f"{path}: datasets.{name}.sha256 is not 64 hex digits")
    return RegistryEntry(name=name, file=str(raw["file"]), sha256=sha,
                         url=str(raw["url"]) if "url" in raw else None,
                         licence=str(raw["licence"]).strip(),
                         description=str(raw["description"]).strip(), rows=int(raw["rows"]),
                         columns=int(raw["columns"]),
                         size_bytes=int(raw["size_bytes"]) if "size_bytes" in raw else None,
                         r_data=r_data)


def dataset_names(suite: str | None = None) -> list[str]:
    """The registries' dataset names (one suite's, or all), in registry order."""
    return [n for n, e in load_registry().items() if suite is None or e.suite == suite]


def _entry(name: str) -> RegistryEntry:
    reg = load_registry()
    if name not in reg:
        raise _unknown(name, reg)
    return reg[name]


def _unknown(name: str, reg: Mapping[str, RegistryEntry]) -> DatasetError:
    return DatasetError(f"unknown dataset {name!r}; the registries ({REGISTRY_PATH.name}, "
                        f"{GALLERY_REGISTRY_PATH.name} in {REGISTRY_PATH.parent}) list "
                        f"{', '.join(reg)}. A path to a data file ({', '.join(READERS)}) "
                        f"also works.")


# --------------------------------------------------------------------------------------------
# Where files live


def cache_dir() -> Path:
    """The per-user data cache: ``$XDG_CACHE_HOME/mlm-harness/data`` or ``~/.cache/...``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "mlm-harness" / "data"


def search_dirs(data_dir: str | Path | None = None) -> list[tuple[str, Path | None]]:
    """The places looked in, in order, as ``(where this comes from, folder or None if unset)``."""
    env = os.environ.get(ENV_VAR)
    return [
        ("--data-dir", Path(data_dir).expanduser() if data_dir is not None else None),
        (f"${ENV_VAR}", Path(env).expanduser() if env else None),
        ("user cache", cache_dir()),
    ]


def folder_with(files: Iterable[str], data_dir: str | Path | None = None) -> Path | None:
    """The first folder in the lookup order that holds every one of ``files``, else None.

    For callers that read several datasets from one folder (the test suite, the benchmarks), so
    they look where :func:`locate` looks instead of keeping their own list of places.
    """
    wanted = list(files)
    for _, folder in search_dirs(data_dir):
        if folder is not None and all((folder / f).is_file() for f in wanted):
            return folder.absolute()
    return None


def _candidates(entry: RegistryEntry, data_dir: str | Path | None) -> list[tuple[str, Path | None]]:
    return [(src, d / entry.file if d is not None else None) for src, d in search_dirs(data_dir)]


def _not_found(entry: RegistryEntry, data_dir: str | Path | None) -> DatasetError:
    lines = [f"dataset '{entry.name}' ({entry.file}) was not found. Looked in:"]
    for src, p in _candidates(entry, data_dir):
        lines.append(f"  {p.absolute() if p else '(not set)'}  [{src}]")
    lines.append(f"Fetch it with: {FETCH_COMMAND} {entry.name}")
    lines.append(f"(or point --data-dir or ${ENV_VAR} at a folder that holds {entry.file})")
    return DatasetError("\n".join(lines))


def locate(name: str, data_dir: str | Path | None = None) -> Path:
    """The path of registry dataset ``name``: first existing file in the lookup order.

    Raises :class:`DatasetError` naming every place looked and the fetch command. Does not verify
    the checksum (:func:`load_dataset` and :func:`verify` do).
    """
    entry = _entry(name)
    for _, p in _candidates(entry, data_dir):
        if p is not None and p.is_file():
            return p.absolute()
    raise _not_found(entry, data_dir)


# --------------------------------------------------------------------------------------------
# Checksums

_sha_cache: dict[tuple[str, int, int], str] = {}


def sha256_file(path: str | Path) -> str:
    """SHA-256 of a file, cached by (path, size, mtime) so repeated loads do not re-hash it."""
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns)
    if key not in _sha_cache:
        h = hashlib.sha256()
        with p.open("rb") as f:
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                h.update(chunk)
        _sha_cache[key] = h.hexdigest()
    return _sha_cache[key]


def _mismatch(entry: RegistryEntry, path: Path, actual: str) -> DatasetError:
    return DatasetError(
        f"checksum mismatch for dataset '{entry.name}': {path}\n"
        f"  expected sha256 {entry.sha256}\n"
        f"  actual   sha256 {actual}\n"
        f"The file is not the course's published copy, so results from it would not be "
        f"comparable. Replace it: {FETCH_COMMAND} {entry.name} --force (or remove the file).")


def verified_path(name: str, data_dir: str | Path | None = None) -> tuple[Path, str]:
    """Locate registry dataset ``name`` and check its SHA-256; returns ``(path, sha256)``."""
    entry = _entry(name)
    path = locate(name, data_dir)
    actual = sha256_file(path)
    if actual != entry.sha256:
        raise _mismatch(entry, path, actual)
    return path, actual


# --------------------------------------------------------------------------------------------
# Verify


@dataclass(frozen=True)
class VerifyRow:
    """The state of one registry dataset on this machine."""

    name: str
    file: str
    status: Literal["ok", "missing", "mismatch"]
    path: Path | None
    expected_sha256: str
    actual_sha256: str | None
    searched: tuple[Path, ...] = ()


def verify(data_dir: str | Path | None = None, suite: str = "course") -> list[VerifyRow]:
    """Check every dataset of a suite's registry (:data:`SUITES`): where it was found (if at all)
    and whether it verifies."""
    rows = []
    for entry in (e for e in load_registry().values() if e.suite == suite):
        searched = tuple(p.absolute() for _, p in _candidates(entry, data_dir) if p is not None)
        try:
            path = locate(entry.name, data_dir)
        except DatasetError:
            rows.append(VerifyRow(entry.name, entry.file, "missing", None, entry.sha256, None,
                                  searched))
            continue
        actual = sha256_file(path)
        status: Literal["ok", "mismatch"] = "ok" if actual == entry.sha256 else "mismatch"
        rows.append(VerifyRow(entry.name, entry.file, status, path, entry.sha256, actual,
                              searched))
    return rows


def format_verify(rows: list[VerifyRow]) -> str:
    """A plain-text table of :func:`verify` rows, for the CLI."""
    width = max((len(r.name) for r in rows), default=4)
    lines = []
    for r in rows:
        where = str(r.path) if r.path else f"not found (fetch: {FETCH_COMMAND} {r.name})"
        lines.append(f"{r.name:<{width}}  {r.status:<8}  {where}")
        if r.status == "mismatch":
            lines.append(f"{'':<{width}}  expected {r.expected_sha256}")
            lines.append(f"{'':<{width}}  actual   {r.actual_sha256}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Fetch

Opener = Callable[[str], IO[bytes]]


def _default_opener(url: str) -> IO[bytes]:
    return urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S)  # noqa: S310 (registry URLs)


URL_OPENER: Opener = _default_opener
"""Opens a URL for reading bytes; tests replace it (or pass ``opener=`` to :func:`fetch`)."""


def fetch(names: list[str] | None, dest: str | Path | None = None, *, force: bool = False,
          opener: Opener | None = None, suite: str = "course") -> list[Path]:
    """Download (or, for ``r_data`` entries, export through R) registry datasets into ``dest``
    (the cache): the ``names`` given, or every dataset of ``suite`` when there are none.

    Each file is streamed to a temporary file in ``dest`` and renamed into place only after its
    SHA-256 verifies, so an interrupted or corrupted download never leaves a file that a later
    load would find. An existing file that verifies is kept (not re-downloaded) unless ``force``;
    an existing file that does not verify is an error unless ``force``, since it may be a copy the
    user put there on purpose. Returns the verified paths in the order asked.
    """
    entries = [_entry(n) for n in names] if names else \
        [e for e in load_registry().values() if e.suite == suite]
    folder = Path(dest).expanduser() if dest is not None else cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return [_fetch_one(e, folder, force, opener or URL_OPENER) for e in entries]


def _fetch_one(entry: RegistryEntry, folder: Path, force: bool, opener: Opener) -> Path:
    target = folder / entry.file
    if target.exists() and not force:
        actual = sha256_file(target)
        if actual == entry.sha256:
            return target.absolute()
        raise _mismatch(entry, target.absolute(), actual)
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{entry.file}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        if entry.r_data:
            os.close(fd)
            actual = _export(entry, tmp)
        else:
            with os.fdopen(fd, "wb") as out:
                actual = _download(entry, opener, out)
        if actual != entry.sha256:
            raise DatasetError(
                f"{'export' if entry.r_data else 'download'} of dataset '{entry.name}' from "
                f"{entry.source} failed verification\n"
                f"  expected sha256 {entry.sha256}\n  actual   sha256 {actual}\n"
                f"Nothing was written to {target}. The source may have changed (another "
                f"version of the R package, or of the course repository); check it before "
                f"updating {suite_registry(entry.suite).name}.")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target.absolute()


def _export(entry: RegistryEntry, out: Path) -> str:
    """Export an ``r_data`` entry through R into ``out``; returns the file's SHA-256."""
    from harness.rdata import RDataError, export_dataset

    assert entry.r_data is not None
    try:
        export_dataset(*entry.r_data, out)
    except RDataError as e:
        raise DatasetError(f"cannot export dataset '{entry.name}' from {entry.source}: {e}\n"
                           f"It needs R with the package {entry.r_data[0]} installed "
                           f"(scripts/bootstrap.sh installs them; see data/README.md).") from None
    h = hashlib.sha256()
    with out.open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _download(entry: RegistryEntry, opener: Opener, out: IO[bytes]) -> str:
    """Stream ``entry.url`` into ``out``; returns the SHA-256 of what was written."""
    h = hashlib.sha256()
    try:
        with opener(entry.url) as response:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                h.update(chunk)
                out.write(chunk)
    except OSError as e:  # urllib.error.URLError is an OSError
        reason = getattr(e, "reason", None) or e.strerror or e
        raise DatasetError(
            f"cannot download dataset '{entry.name}' from {entry.url}: {reason}\n"
            f"Without internet access, copy {entry.file} from the course repository into "
            f"{cache_dir()} (or a folder given by --data-dir / ${ENV_VAR}), then check it with "
            f"`mlm-harness data verify`.") from None
    return h.hexdigest()


# --------------------------------------------------------------------------------------------
# Reading


@dataclass
class LoadedData:
    """A data frame and what is known about where it came from.

    ``frame`` is the caller's own copy (derivations may add columns to it freely).
    ``variable_labels`` maps column -> label; ``value_labels`` maps column -> {code: label}; both
    are metadata only and never applied to the data. ``user_missing`` maps each SPSS column that
    declares user-missing codes to those declarations (``[{"lo": -9.0, "hi": -9.0}]``), whatever
    ``spss_user_missing`` rule was used to read it.
    """

    frame: pd.DataFrame
    path: Path
    sha256: str
    entry: RegistryEntry | None = None
    variable_labels: dict[str, str] = field(default_factory=dict)
    value_labels: dict[str, dict[Any, str]] = field(default_factory=dict)
    user_missing: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    spss_user_missing: SpssUserMissing | None = None
    file_format: str = ""

    @property
    def name(self) -> str:
        """The registry name, or the file path when the data was given by path."""
        return self.entry.name if self.entry else str(self.path)

    @property
    def labels(self) -> dict[str, Any]:
        """Variable and value labels together, e.g. for provenance in a report."""
        return {"variables": self.variable_labels, "values": self.value_labels}

    def copy(self) -> "LoadedData":
        """An independent copy, so callers cannot alter the in-process cache."""
        return replace(self, frame=self.frame.copy(),
                       variable_labels=dict(self.variable_labels),
                       value_labels=copy.deepcopy(self.value_labels),
                       user_missing=copy.deepcopy(self.user_missing))


def file_type(path: str | Path) -> str | None:
    """The reader's file type of ``path`` by how its name ends (``.csv.gz``; None: unknown)."""
    name = Path(path).name.lower()
    return next((t for t in sorted(READERS, key=len, reverse=True) if name.endswith(t)), None)


def read_table(path: str | Path, *,
               spss_user_missing: SpssUserMissing = "as_values") -> LoadedData:
    """Read a .dta, .sav/.zsav, .csv(.gz), .tsv(.gz), .parquet, .feather or .rds file into a
    :class:`LoadedData`.

    * Value labels are kept as metadata and never applied (``apply_value_formats=False``): a 0/1
      variable with labels stays numeric 0/1, and Stata labels never turn a column into a factor
      by accident. Whether a column is a factor is the spec's decision (``columns:``).
    * SPSS user-missing codes follow ``spss_user_missing`` (default ``as_values``, see
      :data:`SPSS_USER_MISSING_RULES`); the declared codes are recorded either way. Stata's
      extended missing values (.a-.z) are always missing, as in Stata.
    * Numeric columns become float64 or int64 (see :func:`normalise_numeric`).

    The file's SHA-256 is computed (cached) and returned for provenance.
    """
    p = Path(path).expanduser()
    if spss_user_missing not in SPSS_USER_MISSING_RULES:
        raise DatasetError(f"spss_user_missing must be one of {SPSS_USER_MISSING_RULES}, "
                           f"not {spss_user_missing!r}")
    if not p.is_file():
        raise DatasetError(f"no such data file: {p.absolute()}")
    suffix = file_type(p)
    if suffix is None:
        raise DatasetError(f"cannot read {p}: unsupported file type {p.suffix or '(none)'!r}; "
                           f"supported: {', '.join(READERS)}")
    try:
        loaded = _READ[suffix](p, spss_user_missing)
    except DatasetError:
        raise
    except Exception as e:  # pyreadstat / pandas errors: name the file, keep the reason
        raise DatasetError(f"cannot read {p.absolute()}: {type(e).__name__}: {e}") from e
    loaded.frame = normalise_numeric(loaded.frame)
    loaded.sha256 = sha256_file(p)
    return loaded


def _labels(meta: Any) -> tuple[dict[str, str], dict[str, dict[Any, str]]]:
    variable = {k: v for k, v in meta.column_names_to_labels.items() if v}
    value = {k: dict(v) for k, v in meta.variable_value_labels.items()}
    return variable, value


def _read_dta(p: Path, _rule: str) -> LoadedData:
    import pyreadstat

    df, meta = pyreadstat.read_dta(str(p), apply_value_formats=False, user_missing=False)
    variable, value = _labels(meta)
    return LoadedData(df, p.absolute(), "", variable_labels=variable, value_labels=value,
                      file_format="stata")


def _read_sav(p: Path, rule: str) -> LoadedData:
    import pyreadstat

    # Always read the codes as values (pyreadstat user_missing=True), because only then does
    # pyreadstat report which codes are declared; the "as_missing" rule is applied afterwards.
    df, meta = pyreadstat.read_sav(str(p), apply_value_formats=False, user_missing=True)
    declared = {col: [dict(r) for r in ranges] for col, ranges in meta.missing_ranges.items()}
    if rule == "as_missing":
        df = _apply_user_missing(df, declared)
    variable, value = _labels(meta)
    return LoadedData(df, p.absolute(), "", variable_labels=variable, value_labels=value,
                      user_missing=declared, spss_user_missing=rule,  # type: ignore[arg-type]
                      file_format="spss")


def _apply_user_missing(df: pd.DataFrame, declared: Mapping[str, list[dict[str, Any]]]
                        ) -> pd.DataFrame:
    """Set every value inside a declared user-missing range (lo <= x <= hi) to missing."""
    df = df.copy()
    for col, ranges in declared.items():
        s = df[col]
        hit = pd.Series(False, index=df.index)
        for r in ranges:
            hit |= (s >= r["lo"]) & (s <= r["hi"])
        df[col] = s.mask(hit)
    return df


def _read_csv(p: Path, _rule: str) -> LoadedData:
    """Comma- or (``.tsv``) tab-separated text, gzip-compressed when the name ends ``.gz``."""
    sep = "\t" if ".tsv" in p.name.lower() else ","
    return LoadedData(pd.read_csv(p, sep=sep), p.absolute(), "", file_format="csv")


def _read_arrow(p: Path, _rule: str) -> LoadedData:
    """Parquet or Feather through pyarrow: categorical columns keep their level order."""
    kind = "feather" if p.name.lower().endswith(".feather") else "parquet"
    try:
        df = pd.read_feather(p) if kind == "feather" else pd.read_parquet(p)
    except ImportError as e:
        raise DatasetError(f"cannot read {p}: reading {kind} needs pyarrow "
                           f"(pip install 'mlm-harness[parquet]'): {e}") from None
    return LoadedData(df, p.absolute(), "", file_format=kind)


def _read_rds(p: Path, _rule: str) -> LoadedData:
    """An R data frame saved with saveRDS, read through R (factors keep R's level order)."""
    from harness.rdata import RDataError, read_rds

    try:
        return LoadedData(read_rds(p), p.absolute(), "", file_format="rds")
    except RDataError as e:
        raise DatasetError(f"cannot read {p}: {e}") from None


_READ: dict[str, Callable[[Path, str], LoadedData]] = {
    ".dta": _read_dta, ".sav": _read_sav, ".zsav": _read_sav, ".csv": _read_csv,
    ".csv.gz": _read_csv, ".tsv": _read_csv, ".tsv.gz": _read_csv, ".parquet": _read_arrow,
    ".feather": _read_arrow, ".rds": _read_rds,
}


def normalise_numeric(df: pd.DataFrame) -> pd.DataFrame:
    """Make every numeric column float64 or int64, so estimators see one of two dtypes.

    Integer columns (Stata byte/int/long, any width or signedness that fits) become int64; float
    columns become float64; pandas nullable numeric columns become float64 with NaN for missing.
    Booleans, strings, dates and categoricals are left alone.

    Stata ``float`` columns are single precision. Widening is exact, not rounded: a stored
    36.66 becomes 36.65999984741211. That is deliberate: it is the number Stata itself computes
    with (it promotes float storage to double in arithmetic), and R's ``foreign::read.dta`` and
    ``haven`` widen float to double the same way, so every backend fits the same numbers.
    Rounding to the printed digits would make this harness the one package that differs.
    """
    out = {}
    for col in df.columns:
        s = df[col]
        dtype = s.dtype
        if isinstance(dtype, pd.BooleanDtype) or dtype == np.bool_:
            continue
        if pd.api.types.is_extension_array_dtype(dtype) and pd.api.types.is_numeric_dtype(dtype):
            out[col] = pd.Series(s.to_numpy(dtype="float64", na_value=np.nan), index=s.index,
                                 name=col)
        elif pd.api.types.is_float_dtype(dtype) and dtype != np.float64:
            out[col] = s.astype(np.float64)  # exact widening, see docstring
        elif pd.api.types.is_integer_dtype(dtype) and dtype != np.int64:
            if dtype == np.uint64 and len(s) and s.max() > np.iinfo(np.int64).max:
                out[col] = s.astype(np.float64)
            else:
                out[col] = s.astype(np.int64)
    if not out:
        return df
    df = df.copy()
    for col, s in out.items():
        df[col] = s
    return df


# --------------------------------------------------------------------------------------------
# Loading by name or path

_LOAD_CACHE_SIZE = 8
_load_cache: OrderedDict[tuple[str, int, int, str], LoadedData] = OrderedDict()


def load_dataset(name_or_path: str | Path, data_dir: str | Path | None = None, *,
                 spss_user_missing: SpssUserMissing = "as_values",
                 base: str | Path | None = None) -> LoadedData:
    """Load a registry dataset by name (verified against its SHA-256) or any data file by path.

    A registry name is looked up in ``data_dir``, ``$MLM_HARNESS_DATA`` and the user cache, in
    that order; a missing file or a checksum mismatch raises :class:`DatasetError`. A path (a
    string that is not a registry name) is read relative to ``base`` (a spec's folder: a spec
    and its data file travel together) or, without one, to the working directory; there is no
    registry checksum to check, but its SHA-256 is still returned for provenance.

    Results are cached in-process by (file, size, mtime, SPSS rule), because a test suite loads
    the same dataset for dozens of specs; each call gets its own copy of the frame.
    """
    key = str(name_or_path)
    registry = load_registry()
    if key in registry:
        path, _ = verified_path(key, data_dir)
        entry: RegistryEntry | None = registry[key]
    elif _looks_like_path(key, base):
        path, entry = Path(key).expanduser(), None
        if base is not None and not path.is_absolute():
            path = Path(base) / path
        if not path.is_file():
            where = f", relative to the spec's folder {base}" if base is not None and \
                not Path(key).expanduser().is_absolute() else ""
            raise DatasetError(f"no such data file: {path.absolute()}{where} (dataset {key!r} "
                               f"is not a registry name either; known: {', '.join(registry)})")
    else:
        raise _unknown(key, registry)
    loaded = _cached_read(path, spss_user_missing)
    loaded.entry = entry
    return loaded


def _looks_like_path(s: str, base: str | Path | None = None) -> bool:
    p = Path(s)
    return (os.sep in s or "/" in s or s.startswith(("~", "."))
            or file_type(p) is not None or p.exists()
            or (base is not None and (Path(base) / p).exists()))


def _cached_read(path: Path, rule: SpssUserMissing) -> LoadedData:
    p = path.resolve()
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns, rule)
    if key in _load_cache:
        _load_cache.move_to_end(key)
    else:
        _load_cache[key] = read_table(p, spss_user_missing=rule)
        while len(_load_cache) > _LOAD_CACHE_SIZE:
            _load_cache.popitem(last=False)
    return _load_cache[key].copy()


def clear_caches() -> None:
    """Forget cached checksums, loaded frames and parsed registries (tests; changed files)."""
    _sha_cache.clear()
    _load_cache.clear()
    _registry_cache.clear()


__all__ = [
    "DatasetError", "LoadedData", "RegistryEntry", "VerifyRow", "REGISTRY_PATH",
    "GALLERY_REGISTRY_PATH", "SUITES", "suite_registry", "ENV_VAR", "SPSS_USER_MISSING_RULES",
    "cache_dir", "clear_caches", "dataset_names", "fetch", "file_type", "format_verify", "load_dataset",
    "load_registry", "locate", "normalise_numeric", "read_table", "search_dirs", "sha256_file",
    "verified_path", "verify",
]
