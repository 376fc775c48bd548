"""validate_vectors: the gate every provider's output goes through."""

from __future__ import annotations

import numpy as np
import pytest

from mcp_server.embeddings.base import batched, describe, validate_vectors
from mcp_server.errors import InvalidEmbeddingError

LABEL = describe("openai", "text-embedding-3-small")


def test_normalises_to_float32_unit_vectors() -> None:
    vectors = validate_vectors([[3.0, 4.0], np.array([0.0, -2.0], dtype=np.float64)], 2, LABEL)
    assert all(v.dtype == np.float32 and v.shape == (2,) for v in vectors)
    np.testing.assert_allclose(vectors[0], [0.6, 0.8], rtol=1e-6)
    np.testing.assert_allclose(vectors[1], [0.0, -1.0])


def test_matrix_fast_path_matches_the_row_path() -> None:
    matrix = np.random.default_rng(0).standard_normal((50, 8))
    from_matrix = validate_vectors(matrix, 8, LABEL)
    from_rows = validate_vectors(list(matrix), 8, LABEL)
    assert len(from_matrix) == 50
    for a, b in zip(from_matrix, from_rows, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
        assert a.dtype == np.float32


def test_large_components_do_not_overflow_the_norm() -> None:
    (vector,) = validate_vectors([[3e30, 4e30]], 2, LABEL)
    np.testing.assert_allclose(vector, [0.6, 0.8], rtol=1e-6)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_is_refused(bad: float) -> None:
    with pytest.raises(InvalidEmbeddingError, match=r"openai embedder \(model \"text-embedding-3-small\"\).*NaN"):
        validate_vectors([[1.0, 1.0], [1.0, bad]], 2, LABEL)
    with pytest.raises(InvalidEmbeddingError, match="input #1"):
        validate_vectors(np.array([[1.0, 1.0], [1.0, bad]]), 2, LABEL)


def test_zero_vector_is_refused() -> None:
    with pytest.raises(InvalidEmbeddingError, match="all-zero vector for input #0"):
        validate_vectors(np.zeros((1, 4)), 4, LABEL)


def test_wrong_length_names_both_sizes() -> None:
    with pytest.raises(InvalidEmbeddingError) as caught:
        validate_vectors([[1.0] * 1536], 384, LABEL)
    assert "1536" in str(caught.value) and "384" in str(caught.value) and "EMBEDDING_DIM" in str(caught.value)


def test_not_a_vector_is_refused() -> None:
    with pytest.raises(InvalidEmbeddingError, match="not a numeric vector"):
        validate_vectors([["a", "b"]], 2, LABEL)
    with pytest.raises(InvalidEmbeddingError, match="1-D"):
        validate_vectors([[[1.0, 2.0]]], 2, LABEL)


def test_count_mismatch_is_refused() -> None:
    with pytest.raises(InvalidEmbeddingError, match="returned 1 vectors for 2 texts"):
        validate_vectors([[1.0, 0.0]], 2, LABEL, expected_count=2)


def test_batched() -> None:
    assert [len(b) for b in batched([str(i) for i in range(150)], 64)] == [64, 64, 22]
    assert list(batched([], 64)) == []


def test_huge_but_finite_components_are_accepted_on_both_paths() -> None:
    (from_rows,) = validate_vectors([[3e40, 4e40]], 2, LABEL)
    (from_matrix,) = validate_vectors(np.array([[3e40, 4e40]]), 2, LABEL)
    np.testing.assert_allclose(from_rows, [0.6, 0.8], rtol=1e-6)
    np.testing.assert_allclose(from_matrix, [0.6, 0.8], rtol=1e-6)
