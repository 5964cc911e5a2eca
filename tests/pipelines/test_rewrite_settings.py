"""A rewritten file keeps the input's Parquet settings: each column's codec and the row groups."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.datasets import storage

TABLE = pa.table({
    "Email": [f"p{i}@example.com" for i in range(7)],
    "User": pa.array([{"Id": f"u{i}", "Score": i} for i in range(7)]),
    "DeviceIds": [[f"d{i}"] for i in range(7)],
})


def _settings(path):
    meta = pq.ParquetFile(path).metadata
    codecs = {meta.row_group(0).column(i).path_in_schema: meta.row_group(0).column(i).compression
              for i in range(meta.num_columns)}
    return codecs, [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]


@pytest.mark.parametrize("compression", [
    "zstd", "snappy", "none",
    {"Email": "gzip", "User.Id": "zstd", "User.Score": "snappy", "DeviceIds.list.element": "lz4"},
])
def test_codecs_and_row_groups_survive_a_rewrite(tmp_path, compression):
    src, dst = tmp_path / "in.parquet", tmp_path / "out.parquet"
    pq.write_table(TABLE, src, compression=compression, row_group_size=3)
    result = storage.rewrite_without_rows(src, dst, np.array([1, 6], dtype=np.int64))
    codecs_in, groups_in = _settings(src)
    codecs_out, groups_out = _settings(dst)
    assert (result.rows_in, result.rows_out) == (7, 5)
    assert codecs_out == codecs_in
    assert groups_in == [3, 3, 1] and groups_out == [2, 3]  # the last group lost its only row
    assert pq.read_table(dst).to_pylist() == [r for i, r in enumerate(TABLE.to_pylist()) if i not in (1, 6)]
