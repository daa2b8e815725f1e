"""SparseAdamW: Adam on the rows in a batch, weight decay that means what AdamW's means."""

from __future__ import annotations

import pytest
import torch

from recsys.train.optim import SparseAdamW


def sparse_grad(values: torch.Tensor, rows: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    return torch.sparse_coo_tensor(rows.unsqueeze(0), values, shape, check_invariants=True)


def test_with_every_row_in_every_batch_it_equals_adamw() -> None:
    torch.manual_seed(0)
    start = torch.randn(6, 3)
    dense = torch.nn.Parameter(start.clone())
    sparse = torch.nn.Parameter(start.clone())
    adamw = torch.optim.AdamW([dense], lr=0.01, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.3)
    lazy = SparseAdamW([sparse], lr=0.01, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.3)
    for _ in range(20):
        grad = torch.randn(6, 3)
        dense.grad = grad.clone()
        sparse.grad = sparse_grad(grad, torch.arange(6), sparse.shape)
        adamw.step()
        lazy.step()
    assert torch.allclose(dense, sparse, atol=1e-6)


def test_rows_outside_the_batches_decay_exactly_as_adamw_would_decay_them() -> None:
    start = torch.ones(4, 2)
    param = torch.nn.Parameter(start.clone())
    optimizer = SparseAdamW([param], lr=0.1, weight_decay=0.5)
    lrs = [0.1, 0.05, 0.2]
    for lr in lrs:  # only row 0 is ever in a batch
        optimizer.param_groups[0]["lr"] = lr
        param.grad = sparse_grad(torch.ones(1, 2), torch.tensor([0]), param.shape)
        optimizer.step()
    untouched_before_flush = param[1].clone()
    optimizer.flush()

    expected = torch.prod(torch.tensor([1 - lr * 0.5 for lr in lrs]))
    assert torch.equal(untouched_before_flush, start[1])  # lazily pending
    assert torch.allclose(param[1:], start[1:] * expected)
    optimizer.flush()  # idempotent
    assert torch.allclose(param[1:], start[1:] * expected)


def test_a_row_that_comes_back_gets_its_missed_decay_first() -> None:
    param = torch.nn.Parameter(torch.ones(2, 1))
    optimizer = SparseAdamW([param], lr=0.1, weight_decay=1.0)
    param.grad = sparse_grad(torch.zeros(1, 1), torch.tensor([0]), param.shape)
    optimizer.step()  # row 1 misses a decay of 0.9
    param.grad = sparse_grad(torch.zeros(1, 1), torch.tensor([1]), param.shape)
    optimizer.step()  # zero gradient: only decay moves row 1, twice
    assert torch.allclose(param[1], torch.tensor([0.81]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["fused", "torch"])
def test_repeated_rows_add_up_to_the_gradient_adamw_sees(dtype: torch.dtype) -> None:
    """float32 on the CPU takes the fused kernel (recsys.train.sparse_rows), float64 the
    torch calls: both sum a row's repeats before the step, as a dense gradient would."""
    torch.manual_seed(0)
    start = torch.randn(6, 3, dtype=dtype)
    dense = torch.nn.Parameter(start.clone())
    sparse = torch.nn.Parameter(start.clone())
    adamw = torch.optim.AdamW([dense], lr=0.01, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.3)
    lazy = SparseAdamW([sparse], lr=0.01, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.3)
    rows = torch.tensor([0, 1, 2, 3, 4, 5, 0, 2, 0])  # every row, and repeats
    for _ in range(20):
        grads = torch.randn(len(rows), 3, dtype=dtype)
        dense.grad = torch.zeros(6, 3, dtype=dtype).index_add_(0, rows, grads)
        sparse.grad = sparse_grad(grads, rows, sparse.shape)
        adamw.step()
        lazy.step()
    assert torch.allclose(dense, sparse, atol=1e-5)
