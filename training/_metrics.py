"""Segmentation metrics: overall accuracy, per-class IoU, F1, precision, recall, mIoU; object-level scores."""

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
        precision = float(tp[i] / predicted[i]) if predicted[i] > 0 else None
        recall = float(tp[i] / support[i]) if support[i] > 0 else None
        per_class[name] = {"iou": iou, "f1": f1, "precision": precision, "recall": recall,
                           "support_px": int(support[i]), "predicted_px": int(predicted[i])}
    present = [v["iou"] for v in per_class.values() if v["iou"] is not None]
    total = matrix.sum()
    return {
        "overall_accuracy": float(tp.sum() / total) if total else None,
        "miou": float(np.mean(present)) if present else None,
        "pixels": int(total),
        "per_class": per_class,
    }


def object_scores(truth: np.ndarray, pred: np.ndarray, positive: int, ignore: int = NODATA_CLASS) -> dict[str, object]:
    """Object-level precision and recall of a binary task (8-connected components of `positive`).

    A predicted object is a true detection when it overlaps a labelled object; a labelled object is found when a
    predicted object overlaps it. Predicted objects lying wholly on ignored pixels are not counted.
    """
    from scipy import ndimage

    structure = np.ones((3, 3), dtype=bool)
    truth_objects, n_truth = ndimage.label(truth == positive, structure=structure)
    pred_mask = (pred == positive) & (truth != ignore)
    pred_objects, n_pred = ndimage.label(pred_mask, structure=structure)
    hits = np.unique(pred_objects[(pred_objects > 0) & (truth_objects > 0)])
    found = np.unique(truth_objects[(pred_objects > 0) & (truth_objects > 0)])
    return {
        "predicted_objects": int(n_pred),
        "labelled_objects": int(n_truth),
        "true_detections": int(len(hits)),
        "found_objects": int(len(found)),
        "object_precision": float(len(hits) / n_pred) if n_pred else None,
        "object_recall": float(len(found) / n_truth) if n_truth else None,
    }
