"""The sample-data generator's parts; `pipelines.generate.generate` is the entry point."""
