"""The lme4 backend: lme4/ordinal fits in an isolated R worker process (see backend.py)."""
