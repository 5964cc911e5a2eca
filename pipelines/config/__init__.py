"""The configuration file as typed models (`settings`, `types`), its one-line error messages, the checks
that datasets do not overlap, its JSON Schema, and secrets from the environment or Prefect blocks."""
