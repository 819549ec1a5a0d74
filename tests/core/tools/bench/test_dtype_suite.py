"""The precision table's code agreement and goals (core/tools/bench/dtype_suite.py); the
end-to-end run on a tiny real checkpoint is in tests/core/tools/test_arch_models.py."""

from __future__ import annotations

import torch

from core.tools.bench.dtype_suite import DtypeFigure, agreement, dtype_goals, format_dtypes


def test_agreement_counts_identical_frames_and_the_first_divergence():
    ref = torch.arange(5 * 16).reshape(5, 16)
    assert agreement(ref.clone(), ref) == (1.0, None)
    other = ref.clone()
    other[2, 7] += 1  # one code of frame 2
    other[4, 0] += 1
    assert agreement(other, ref) == (3 / 5, 2)
    assert agreement(ref[:4], ref) == (4 / 5, 4)  # a shorter take differs from where it ends
    assert agreement(None, ref) == (0.0, 0)


def figure(row, rtf, same=True, decode="stock"):
    return DtypeFigure("custom_voice", row, row.split("+")[0], decode, 8, rtf, 1.0, 1, rtf, same, 1.0, None, 1, [rtf])


def test_goals_compare_auto_with_fp32_in_the_same_run_and_need_exactness():
    figures = [figure("float32", 6.0), figure("bfloat16", 3.0), figure("bfloat16+static", 2.7, decode="static")]
    goals = dtype_goals(figures, "bfloat16")
    mode = goals["modes"]["custom_voice"]
    assert mode["auto_vs_fp32"] == 0.5 and mode["met"] and goals["met_all"]
    assert abs(mode["static_vs_stock_loop"] - 0.9) < 1e-9
    inexact = dtype_goals([figure("float32", 6.0), figure("bfloat16", 3.0, same=False)], "bfloat16")
    assert not inexact["modes"]["custom_voice"]["met"] and not inexact["met_all"]
    slow = dtype_goals([figure("float32", 6.0), figure("bfloat16", 4.0)], "bfloat16")
    assert not slow["met_all"]
    text = "\n".join(format_dtypes(figures, goals))
    assert "auto (bfloat16) / fp32 RTF = 0.50" in text and "static-cache loop / stock loop (bf16) = 0.90" in text
