"""The residual scan: a decoding search of every stored file for blacklisted identities the sweep should
have removed, and its SQL. Its report block is rendered by `pipelines.reporting.residual_report`."""
