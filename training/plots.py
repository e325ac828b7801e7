"""Evaluation plots logged with every run: ROC, calibration and SHAP summaries."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers or CI

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve


def plot_roc(y: np.ndarray, scores: dict[str, np.ndarray], title: str, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, p in scores.items():
        ok = ~np.isnan(p)
        if ok.sum() == 0 or len(np.unique(y[ok])) < 2:
            continue
        fpr, tpr, _ = roc_curve(y[ok], p[ok])
        ax.plot(fpr, tpr, label=name, linestyle="--" if name == "oracle" else "-")
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_calibration(
    y: np.ndarray, scores: dict[str, np.ndarray], path: Path, bins: int = 10
) -> Path:
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, p in scores.items():
        ok = ~np.isnan(p)
        if ok.sum() == 0:
            continue
        q = np.unique(np.quantile(p[ok], np.linspace(0, 1, bins + 1)))
        which = np.clip(np.digitize(p[ok], q[1:-1]), 0, len(q) - 2)
        frame = pd.DataFrame({"p": p[ok], "y": y[ok], "bin": which}).groupby("bin").mean()
        ax.plot(frame["p"], frame["y"], marker="o", label=name)
    top = max(0.05, float(np.nanmax([np.nanmax(p) for p in scores.values()])))
    ax.plot([0, top], [0, top], color="grey", linewidth=0.8)
    ax.set(
        xlabel="predicted churn probability",
        ylabel="observed churn rate",
        title="Churn calibration (validation window)",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_shap_summary(
    contributions: np.ndarray,
    X: np.ndarray,
    features: list[str],
    title: str,
    path: Path,
    max_display: int = 15,
) -> Path:
    import shap  # heavy import, only when plotting

    shap.summary_plot(
        contributions[:, :-1],
        features=pd.DataFrame(X, columns=features),
        max_display=max_display,
        show=False,
        plot_size=(8, 6),
    )
    fig = plt.gcf()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
