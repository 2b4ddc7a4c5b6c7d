"""The one error of the SPSS exporter."""


class SpssRenderError(ValueError):
    """A spec that cannot be written as SPSS syntax; the message names the spec or variable and
    the reason (a model is never simplified to fit SPSS)."""
