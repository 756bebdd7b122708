"""What the study scripts share: the repeated cross-validation that compares two feature sets."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def cross_validated_gain(rows: Sequence[dict[str, float]], y: np.ndarray, extra: Sequence[str],
                         repeats: int = 20, base_extra: Sequence[str] = ()) -> tuple[float, float, float, float]:
    """Mean held-out-fold AUROC of the calibrator on the shipped features (plus ``base_extra``, such
    as the opt-in cross-check's) and with ``extra`` added too (5-fold, stratified, repeated
    ``repeats`` times with seeds 0..repeats-1), the mean paired gain, and the share of folds where
    it was positive."""
    from sklearn.model_selection import StratifiedKFold

    from edgecascade.quality.calibration import FEATURE_NAMES, auroc, fit_calibration

    base, more = [], []
    for rep in range(repeats):
        for train, test in StratifiedKFold(5, shuffle=True, random_state=rep).split(np.zeros(len(y)), y):
            fit_rows, fit_y, test_rows = [rows[i] for i in train], list(y[train]), [rows[i] for i in test]
            narrow = fit_calibration(fit_rows, fit_y, model="m", features=[*FEATURE_NAMES, *base_extra])
            base.append(auroc(narrow.predict_many(test_rows), y[test]))
            wider = fit_calibration(fit_rows, fit_y, model="m", features=[*FEATURE_NAMES, *base_extra, *extra])
            more.append(auroc(wider.predict_many(test_rows), y[test]))
    gain = np.array(more) - np.array(base)
    return float(np.mean(base)), float(np.mean(more)), float(gain.mean()), float(np.mean(gain > 0))
