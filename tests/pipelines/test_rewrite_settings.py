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


GONE = "gone.person@example.com"
_DICT = pa.dictionary(pa.int8(), pa.string())
DICTIONARY_COLUMNS = {
    "top level": pa.array([GONE, "kept@example.com", None], _DICT),
    "in a struct": pa.array([{"Email": GONE}, {"Email": "kept"}, None], pa.struct([pa.field("Email", _DICT)])),
    "in a list": pa.array([[GONE, "kept"], ["kept"], None], pa.list_(_DICT)),
    "in a large list": pa.array([[GONE], ["kept"], []], pa.large_list(_DICT)),
    "map values": pa.array([[("Email", GONE)], [("Email", "kept")], None], pa.map_(pa.string(), _DICT)),
}


@pytest.mark.parametrize("column", list(DICTIONARY_COLUMNS), ids=list(DICTIONARY_COLUMNS))
def test_a_removed_value_leaves_no_trace_in_a_dictionary_page(tmp_path, column):
    """A dictionary-typed column (pandas or Polars categoricals) is read with its row group's whole
    dictionary: written back as it is, a removed row's email would stay in the file's dictionary page
    (no row refers to it; no row-level check sees it). The rewrite keeps only the values rows use,
    in the same type."""
    table = pa.table({"Email": DICTIONARY_COLUMNS[column], "Other": ["a", "b", "c"]})
    src, dst = tmp_path / "in.parquet", tmp_path / "out.parquet"
    pq.write_table(table, src, compression="none")  # uncompressed: the bytes can be searched
    assert GONE.encode() in src.read_bytes()
    storage.rewrite_without_rows(src, dst, np.array([0], dtype=np.int64))
    assert GONE.encode() not in dst.read_bytes()
    assert pq.read_schema(dst).equals(pq.read_schema(src), check_metadata=True)
    assert pq.read_table(dst).to_pylist() == table.to_pylist()[1:]
