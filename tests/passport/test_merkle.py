"""The Merkle tree against RFC 6962/9162 reference vectors and a naive reference, and the compiled record
splitter and hasher against the plain-Python definitions they must equal."""

from __future__ import annotations

import hashlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from piguard.passport import merkle, records

# The reference test tree of Certificate Transparency (transparency-dev/merkle testonly/constants.go).
CT_LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                         "606162636465666768696a6b6c6d6e6f")]  # fmt: skip
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# Inclusion proof of leaf 0 in the 8-leaf tree (same source).
CT_PATH_0_OF_8 = [
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
]


def naive_mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.1 written literally: split at the largest power of two below n."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return merkle.node_hash(naive_mth(leaves[:k]), naive_mth(leaves[k:]))


def test_certificate_transparency_roots_and_path():
    leaves = [merkle.leaf_hash(x) for x in CT_LEAVES]
    assert [merkle.root_of(b"".join(leaves[:n])).hex() for n in range(1, 9)] == CT_ROOTS
    assert merkle.root_of(b"") == hashlib.sha256(b"").digest()
    path = merkle.inclusion_proof(b"".join(leaves), 0)
    assert [p.hex() for p in path] == CT_PATH_0_OF_8
    assert merkle.verify_inclusion(leaves[0], 0, 8, path, bytes.fromhex(CT_ROOTS[7]))


@pytest.mark.parametrize("n", [*range(1, 40), 63, 64, 65, 100, 257])
def test_levels_and_proofs_match_the_rfc_definition(n):
    leaves = [merkle.leaf_hash(str(i).encode()) for i in range(n)]
    flat = b"".join(leaves)
    root = merkle.root_of(flat)
    assert root == naive_mth(leaves)
    for i in range(n):
        path = merkle.inclusion_proof(flat, i)
        assert merkle.verify_inclusion(leaves[i], i, n, path, root)
        assert not merkle.verify_inclusion(merkle.leaf_hash(b"other"), i, n, path, root)
        if n > 1:
            assert not merkle.verify_inclusion(leaves[i], (i + 1) % n, n, path, root)
    # Node j of layer c is the RFC root of the aligned chunk j*2^c .. (j+1)*2^c - 1.
    for max_nodes in (1, 2, 3, 5, 8):
        level, lay = merkle.layer(flat, max_nodes)
        span = 1 << level
        chunks = [leaves[j : j + span] for j in range(0, n, span)]
        assert lay == b"".join(naive_mth(c) for c in chunks)
        assert merkle.root_of(lay) == root


def test_first_difference_names_the_first_node():
    a = b"".join(merkle.leaf_hash(bytes([i])) for i in range(10))
    b = bytearray(a)
    b[7 * 32 + 5] ^= 1
    assert merkle.first_difference(a, bytes(b)) == 7
    assert merkle.first_difference(a, a) is None
    assert merkle.first_difference(a, a[: 9 * 32]) == 9


_text = st.lists(
    st.one_of(st.sampled_from(['"', "\n", "\r", ",", "\t", '""', "\r\n"]), st.text(max_size=6)), max_size=40
).map(lambda parts: "".join(parts).encode("utf-8"))


@settings(max_examples=300, deadline=None)
@given(_text)
def test_compiled_splitter_equals_the_python_definition(data):
    if records._merkle is None:
        pytest.fail("the _merkle extension is not built (needs libssl-dev); run make install")
    for fmt in ("csv", "tsv", "jsonl"):
        assert records.text_leaves(data, fmt, compiled=True) == records.text_leaves(data, fmt, compiled=False)
        mode, header = records.TEXT_MODES[fmt]
        every = list(records._py_spans(data, mode, header))
        for first, step in ((0, 1), (1, 2), (2, 3)):
            assert records.text_spans(data, fmt, first, step, 5) == every[first::step][:5]


def test_csv_records_follow_rfc4180_quotes_and_skip_the_header():
    data = b'id,note\r\n1,"two\nlines"\r\n\r\n2,"say ""hi"""\n3,plain'
    leaves, n = records.text_leaves(data, "csv")
    assert n == 3
    expected = [b'1,"two\nlines"', b'2,"say ""hi"""', b"3,plain"]
    assert leaves == b"".join(merkle.leaf_hash(r) for r in expected)
    # TSV and JSON Lines do not quote: every LF ends a record.
    assert records.text_leaves(b'{"a": 1}\n\n{"a": 2}\r\n', "jsonl")[1] == 2


def test_parquet_records_compiled_equal_python(tmp_path):
    t = pa.table({
        "name": ["张三", None, "", "x" * 70000],
        "n": pa.array([1, None, 3, -4], type=pa.int64()),
        "f": [0.1, 2.5e10, None, float("nan")],
        "b": pa.array([b"\x00\xff", None, b"", b"z"], type=pa.binary()),
        "tags": [["a", "b"], None, [], ["c"]],
        "cat": pa.array(["u", "v", "u", None]).dictionary_encode(),
    })  # fmt: skip
    path = tmp_path / "t.parquet"
    pq.write_table(t, path, row_group_size=3)
    batch = pq.read_table(path).to_batches()[0]
    assert records._batch_leaves(batch, compiled=True) == records._batch_leaves(batch, compiled=False)
    leaves, n = records._parquet_leaves(str(path))
    assert n == 4
    rec = records.parquet_record(str(path), 1)
    assert rec.startswith(b"\xff\xff\xff\xff")  # the null name
    assert merkle.leaf_hash(rec) == leaves[32:64]
    assert merkle.leaf_hash(records.parquet_record(str(path), 3)) == leaves[96:128]


def test_other_files_are_64k_blocks(tmp_path):
    p = tmp_path / "blob.bin"
    data = bytes(range(256)) * 600  # 153,600 bytes: 2 full blocks and a short one
    p.write_bytes(data)
    leaves, n = records._block_leaves(str(p))
    assert n == 3
    assert leaves[64:96] == merkle.leaf_hash(data[2 * records.BLOCK_SIZE :])
    assert records.record_at(str(p), "blocks", 1) == data[records.BLOCK_SIZE : 2 * records.BLOCK_SIZE]
