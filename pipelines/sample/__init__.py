"""The sample-data generator's parts; `pipelines.sample.generate.generate` is the entry point."""
