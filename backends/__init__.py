"""Backends: each fits a spec in one system and returns a :class:`harness.results.FitResult`.

The name -> class registry lives here, not in :mod:`backends.base`, so that listing the backend
names (the command line's ``--help`` and argument checks) imports nothing heavy.
"""

REGISTRY: dict[str, str] = {
    "native": "backends.native.backend:NativeBackend",
    "lme4": "backends.lme4.backend:Lme4Backend",
    "glmmtmb": "backends.glmmtmb.backend:GlmmtmbBackend",
    "stata": "backends.stata.backend:StataBackend",
    "statsmodels": "backends.statsmodels.backend:StatsmodelsBackend",
}


def backend_names() -> list[str]:
    return list(REGISTRY)
