"""What a run proves: sealed reports (JSON, Markdown, HTML) linked into the hash chain, the report index,
deadlines, notices, retention-hold records and erasure certificates."""
