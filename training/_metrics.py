"""Segmentation metrics from a confusion matrix: overall accuracy, per-class IoU and F1, mIoU."""

from __future__ import annotations

import numpy as np

from geovigie.types import NODATA_CLASS


def confusion_matrix(truth: np.ndarray, pred: np.ndarray, num_classes: int, ignore: int = NODATA_CLASS) -> np.ndarray:
    """(num_classes, num_classes) counts, rows = truth, columns = prediction; `ignore` truth is skipped."""
    keep = truth != ignore
    t, p = truth[keep].astype(np.int64), pred[keep].astype(np.int64)
    return np.bincount(t * num_classes + p, minlength=num_classes**2).reshape(num_classes, num_classes)


def scores(matrix: np.ndarray, class_names: list[str]) -> dict[str, object]:
    """Metrics of a confusion matrix; classes absent from the truth get IoU None and are left out of mIoU."""
    tp = np.diag(matrix).astype(float)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    union = support + predicted - tp
    per_class = {}
    for i, name in enumerate(class_names):
        iou = float(tp[i] / union[i]) if support[i] > 0 and union[i] > 0 else None
        f1 = float(2 * tp[i] / (support[i] + predicted[i])) if support[i] > 0 else None
        per_class[name] = {"iou": iou, "f1": f1, "support_px": int(support[i])}
    present = [v["iou"] for v in per_class.values() if v["iou"] is not None]
    total = matrix.sum()
    return {
        "overall_accuracy": float(tp.sum() / total) if total else None,
        "miou": float(np.mean(present)) if present else None,
        "pixels": int(total),
        "per_class": per_class,
    }
