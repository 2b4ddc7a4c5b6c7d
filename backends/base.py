"""The small interface every backend implements, and the name -> backend registry.

Backends are imported lazily by name so that, e.g., the native estimator works in an environment
with no R at all: nothing imports rpy2 until the lme4 backend is asked for.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pandas as pd

from backends import REGISTRY, backend_names  # noqa: F401  (backend_names: re-exported)
from harness.results import FitResult, Status
from harness.spec import Model, Spec


@dataclass(frozen=True)
class Availability:
    """Whether a backend can run here; when it cannot, why and the exact fix."""

    ok: bool
    reason: str = ""
    fix: str = ""
    versions: tuple[tuple[str, str], ...] = ()

    def message(self) -> str:
        if self.ok:
            return "available"
        return f"{self.reason} (fix: {self.fix})" if self.fix else self.reason


@dataclass
class FitJob:
    """One model to fit: the spec, the model as this backend should fit it, and prepared data."""

    spec: Spec
    model: Model
    data: pd.DataFrame
    data_path: Path | None = None
    data_sha256: str | None = None


class Backend(ABC):
    name: ClassVar[str]
    #: status given to models the backend cannot fit: "not_estimable" when the package cannot
    #: express the model at all, "pending" when support is planned but not written yet.
    unsupported_status: ClassVar[Status] = "not_estimable"

    @abstractmethod
    def availability(self) -> Availability:
        """Check (cheaply, and cached) whether this backend can run on this machine."""

    def unsupported_reason(self, model: Model) -> str | None:
        """None when the backend can fit ``model``; otherwise why not (shown as not_estimable)."""
        return None

    def unsupported_status_for(self, model: Model) -> Status:
        """The status of an unsupported ``model``: :attr:`unsupported_status` unless a backend
        knows this model is beyond what it can express (not_estimable) while others are only
        not written yet (pending)."""
        return self.unsupported_status

    def refusal(self, job: FitJob) -> FitResult | None:
        """The result for a model this backend will not try here (it cannot express it, or
        the backend is unavailable on this machine); None when it can try."""
        reason = self.unsupported_reason(job.model)
        if reason:
            return FitResult.failed(job.spec.id, self.name,
                                    self.unsupported_status_for(job.model), reason)
        available = self.availability()
        if not available.ok:
            return FitResult.failed(job.spec.id, self.name, "unavailable", available.message())
        return None

    @abstractmethod
    def fit(self, job: FitJob) -> FitResult:
        """Fit the model. Never raises for model trouble: returns a result with status 'error'."""

    def render(self, spec: Spec) -> str:
        """The exact code this backend would run for ``spec`` (shown by ``mlm-harness show``)."""
        return ""

    def interrupt(self) -> int:
        """Stop at once every process this backend runs fits in (the run was interrupted);
        returns how many were stopped. Backends that fit in-process have none."""
        return 0


_INSTANCES: dict[str, Backend] = {}


def interrupt_all() -> dict[str, int]:
    """Interrupt every backend this process has used: {backend: worker processes stopped}."""
    return {name: backend.interrupt() for name, backend in list(_INSTANCES.items())}


def get_backend(name: str) -> Backend:
    """The backend called ``name``; an unknown name lists the known ones."""
    if name not in REGISTRY:
        raise KeyError(f"unknown backend {name!r}; known backends: {', '.join(REGISTRY)}")
    if name not in _INSTANCES:
        module, cls = REGISTRY[name].split(":")
        _INSTANCES[name] = getattr(importlib.import_module(module), cls)()
    return _INSTANCES[name]
