"""SPSS as a generated-code engine: syntax (MIXED, GENLINMIXED) written from a spec."""
