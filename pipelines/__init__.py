"""Pure data logic of gdpr-sweep: tables in, tables out. No Prefect, no environment lookups."""
