"""The one factory: which kind of dataset a configuration names (docs/decisions/0253-storage-interface.md).

This is the only place that looks at `format` and at the location's scheme to pick an implementation;
everything else calls the `Dataset` interface (pipelines/datasets/base.py). Adding a kind of dataset is
one module implementing `Dataset`, one line here, and its parameter in tests/contract/ (CONTRIBUTING.md).
"""

from __future__ import annotations

from pipelines.config.settings import DatasetConfig, Settings
from pipelines.datasets.base import Dataset


def open_dataset(config: DatasetConfig, settings: Settings) -> Dataset:
    """The implementation for `config`: a Delta or Iceberg table (local or S3), an S3 prefix, or a local folder."""
    if config.format == "iceberg":
        from pipelines.datasets.icebergtable import IcebergDataset

        return IcebergDataset(config, settings)
    if config.format == "delta":
        from pipelines.datasets.deltatable import DeltaDataset

        return DeltaDataset(config, settings)
    if config.url is not None:
        from pipelines.datasets.s3prefix import S3Prefix

        return S3Prefix(config, settings)
    from pipelines.datasets.local import LocalFolder

    return LocalFolder(config, settings)


def open_datasets(settings: Settings) -> list[Dataset]:
    """Every configured dataset, in configuration order."""
    return [open_dataset(config, settings) for config in settings.datasets]
