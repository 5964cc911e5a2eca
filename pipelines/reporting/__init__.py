"""What a run proves: sealed reports (JSON, Markdown, HTML) linked into the hash chain, the report index,
deadlines, notices, the residual scan's report block, retention-hold records and erasure certificates."""
