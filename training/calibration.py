"""Raw scores -> probabilities: the churn calibrator and the NPS score distribution.

Both maps are smooth and strictly increasing in the head's raw score, so a feature change
that moves the raw score moves the probability the same way, and nearby customers keep
distinct probabilities (no isotonic steps). Probabilities are never exactly 0 or 1.
"""

from __future__ import annotations

import numpy as np

# Fitting needs sklearn and scipy.optimize; they are imported where a map is fitted, so a
# service worker that only applies fitted maps never imports them (nor scipy at all: the
# three logistic functions below are NumPy's, as exact in the tails as scipy.special's).


def expit(x):
    """1 / (1 + e^-x) without overflow, and without losing the tails (e^x / (1 + e^x))."""
    x = np.asarray(x, dtype=float)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))[()]


def log_expit(x):
    """log(expit(x)), exact for large |x|."""
    return -np.logaddexp(0.0, -np.asarray(x, dtype=float))[()]


def logit(p):
    p = np.asarray(p, dtype=float)
    return (np.log(p) - np.log1p(-p))[()]


EPS = 1e-6  # probabilities stay inside [EPS, 1 - EPS]
CALIBRATION_FOLDS = 3
MIN_ISOTONIC_POSITIVES = 100
PSEUDO_ROWS = 5.0
NPS_SCORES = np.arange(11, dtype=float)
CATEGORY_SCORES = ((0, 7), (7, 9), (9, 11))  # detractor 0-6, passive 7-8, promoter 9-10


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, EPS, 1 - EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def _fit_logistic(columns: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1e6, solver="newton-cholesky", max_iter=200).fit(columns, y)
    return model.coef_[0].astype(float), float(model.intercept_[0])


class _Platt:
    """p = sigmoid(a * raw + b) with a > 0 (temperature scaling plus a shift)."""

    name = "platt"

    def fit(self, raw, y) -> _Platt:
        coef, self.b = _fit_logistic(raw.reshape(-1, 1), y)
        self.a = max(float(coef[0]), 1e-6)  # a model no better than chance still keeps its order
        return self

    def logit(self, raw: np.ndarray) -> np.ndarray:
        return self.a * raw + self.b


class _Beta:
    """Beta calibration (Kull et al. 2017) on s = sigmoid(raw): logit p = a log s - b log(1-s) + c,
    with a, b >= 0 so the map stays increasing."""

    name = "beta"

    def fit(self, raw, y) -> _Beta:
        coef, self.c = _fit_logistic(self._columns(raw), y)
        if (coef < 0).any():
            raise ValueError("beta calibration would not be monotone here")
        self.a, self.b = float(coef[0]), float(coef[1])
        if self.a + self.b <= 0:
            raise ValueError("beta calibration is flat here")
        return self

    @staticmethod
    def _columns(raw: np.ndarray) -> np.ndarray:
        return np.column_stack([log_expit(raw), -log_expit(-raw)])

    def logit(self, raw: np.ndarray) -> np.ndarray:
        cols = self._columns(np.asarray(raw, float))
        return self.a * cols[:, 0] + self.b * cols[:, 1] + self.c


class _IsotonicInterpolated:
    """Isotonic regression, then straight lines (on the logit scale) between the centres of
    its blocks, extended beyond the ends with the Platt slope: smooth where isotonic steps."""

    name = "isotonic"

    def fit(self, raw, y) -> _IsotonicInterpolated:
        if y.sum() < MIN_ISOTONIC_POSITIVES or (len(y) - y.sum()) < MIN_ISOTONIC_POSITIVES:
            raise ValueError("too few positives or negatives for isotonic calibration")
        order = np.argsort(raw, kind="stable")
        x = raw[order]
        from sklearn.isotonic import IsotonicRegression

        fitted = IsotonicRegression(out_of_bounds="clip").fit(x, y[order]).predict(x)
        starts = np.flatnonzero(np.r_[True, np.diff(fitted) != 0])
        sizes = np.diff(np.r_[starts, len(x)])
        centres = np.add.reduceat(x, starts) / sizes
        # Shrink each block towards the overall rate by a few pseudo-rows, so a small block at
        # either end cannot say 0 or 1 with certainty.
        rate = float(y.mean())
        shrunk = (fitted[starts] * sizes + PSEUDO_ROWS * rate) / (sizes + PSEUDO_ROWS)
        values = logit(np.clip(shrunk, EPS, 1 - EPS))
        # Clipping can tie two blocks; keep the knots strictly increasing.
        values = np.maximum.accumulate(values) + np.arange(len(values)) * 1e-9
        keep = np.r_[True, np.diff(centres) > 0]
        self.x_, self.v_ = centres[keep], values[keep]
        if len(self.x_) < 2:
            raise ValueError("isotonic calibration found a single block")
        self.slope_ = _Platt().fit(raw, y).a
        return self

    def logit(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, float)
        out = np.interp(raw, self.x_, self.v_)
        low, high = raw < self.x_[0], raw > self.x_[-1]
        out[low] = self.v_[0] + self.slope_ * (raw[low] - self.x_[0])
        out[high] = self.v_[-1] + self.slope_ * (raw[high] - self.x_[-1])
        return out


_METHODS = (_Platt, _Beta, _IsotonicInterpolated)


class Calibrator:
    """Raw margin -> probability by Platt, beta or interpolated isotonic calibration, chosen
    by cross-validated log-loss on the calibration rows and then refitted on all of them."""

    def fit(self, raw: np.ndarray, y: np.ndarray, seed: int = 0) -> Calibrator:
        raw, y = np.asarray(raw, float), np.asarray(y, float)
        folds = np.random.default_rng(seed).integers(0, CALIBRATION_FOLDS, len(raw))
        self.scores_: dict[str, float] = {}
        for method in _METHODS:
            losses = []
            try:
                for k in range(CALIBRATION_FOLDS):
                    train, test = folds != k, folds == k
                    fitted = method().fit(raw[train], y[train])
                    losses.append(_log_loss(y[test], expit(fitted.logit(raw[test]))))
            except ValueError:
                continue  # not applicable to these rows
            self.scores_[method.name] = float(np.mean(losses))
        best = min(self.scores_, key=self.scores_.get)
        self.method_ = best
        self.map_ = next(m for m in _METHODS if m.name == best)().fit(raw, y)
        return self

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        # A squeeze, not a clip: strictly increasing, and never exactly 0 or 1.
        return EPS + (1 - 2 * EPS) * expit(self.map_.logit(np.asarray(raw, float)))


class OrdinalLink:
    """Raw NPS score -> a distribution over the scores 0-10 (cumulative logit):

    P(score <= k) = sigmoid(theta_k - eta), k = 0..9, with increasing theta. The shape
    (theta) is fitted by weighted maximum likelihood with eta = a * raw, a > 0. The location
    eta is then set so that the distribution's mean is the raw score's calibrated mean,
    ``b0 + b1 * raw`` (weighted least squares, b1 > 0): the heads' raw scores are squared-loss
    regressions of the score, and a cumulative logit's own mean is a compressed S-curve of
    ``a * raw`` that gave away 0.03 MAE against a plain ridge (measured, three demo worlds).
    The expected score, the category probabilities and the category all come from this one
    distribution, which stays smooth and strictly increasing in the raw score.
    """

    GRID = 4001  # eta values the mean is inverted on (steps of ~0.02)

    def fit(self, raw: np.ndarray, score: np.ndarray, weight: np.ndarray | None = None):
        raw = np.asarray(raw, float)
        k = np.clip(np.round(score), 0, 10).astype(int)
        w = np.ones(len(raw)) if weight is None else np.asarray(weight, float)
        w = w / w.mean()
        self.shift_, self.scale_ = float(raw.mean()), float(raw.std() or 1.0)
        z = (raw - self.shift_) / self.scale_
        cum = np.cumsum(np.bincount(k, weights=w, minlength=11))[:10] / w.sum()
        theta0 = logit(np.clip(cum, 1e-3, 1 - 1e-3))
        theta0 = np.maximum.accumulate(theta0) + np.arange(10) * 1e-3
        start = np.r_[0.0, theta0[0], np.log(np.diff(theta0))]

        n = len(k)
        upper_ok, lower_ok = k < 10, k > 0
        rows = np.arange(n)

        def loss_and_grad(params: np.ndarray) -> tuple[float, np.ndarray]:
            a = np.exp(params[0])
            deltas = np.exp(params[2:])
            theta = params[1] + np.r_[0.0, np.cumsum(deltas)]
            F = expit(theta[None, :] - a * z[:, None])
            f = F * (1 - F)
            up = np.where(upper_ok, F[rows, np.minimum(k, 9)], 1.0)
            f_up = np.where(upper_ok, f[rows, np.minimum(k, 9)], 0.0)
            lo = np.where(lower_ok, F[rows, np.maximum(k - 1, 0)], 0.0)
            f_lo = np.where(lower_ok, f[rows, np.maximum(k - 1, 0)], 0.0)
            p = np.maximum(up - lo, 1e-12)
            coef = -w / p / n
            g_theta = np.bincount(k[upper_ok], (coef * f_up)[upper_ok], minlength=10)[:10]
            g_theta -= np.bincount(k[lower_ok] - 1, (coef * f_lo)[lower_ok], minlength=10)[:10]
            grad = np.empty_like(params)
            grad[0] = a * float(np.sum(coef * -z * (f_up - f_lo)))
            grad[1] = g_theta.sum()
            grad[2:] = deltas * np.cumsum(g_theta[::-1])[::-1][1:]
            return float(-np.sum(w * np.log(p)) / n), grad

        from scipy.optimize import minimize

        result = minimize(loss_and_grad, start, jac=True, method="L-BFGS-B")
        self.params_ = result.x
        self._fit_mean(raw, score, w)
        return self

    def _fit_mean(self, raw: np.ndarray, score: np.ndarray, w: np.ndarray) -> None:
        """The calibrated mean b0 + b1 * raw, and the grid that inverts mean -> eta."""
        self.mean_map_ = None
        if len(raw) < 3 or raw.std() == 0:
            return
        A = np.column_stack([np.ones(len(raw)), raw]) * np.sqrt(w)[:, None]
        b0, b1 = np.linalg.lstsq(A, np.asarray(score, float) * np.sqrt(w), rcond=None)[0]
        if not b1 > 0:  # a raw score that does not rank: keep the likelihood's own location
            return
        theta = self._thresholds(self.params_)
        eta = np.linspace(theta[0] - 30.0, theta[-1] + 30.0, self.GRID)
        means = expected_score(self._from_eta(eta, theta))
        # strictly increasing for the inversion (the EPS floor flattens the far ends)
        keep = np.r_[True, means[1:] > np.maximum.accumulate(means)[:-1]]
        self.mean_map_ = (float(b0), float(b1), means[keep], eta[keep])

    @staticmethod
    def _thresholds(params: np.ndarray) -> np.ndarray:
        return params[1] + np.r_[0.0, np.cumsum(np.exp(params[2:]))]

    @staticmethod
    def _from_eta(eta: np.ndarray, theta: np.ndarray) -> np.ndarray:
        cum = expit(theta[None, :] - eta[:, None])
        cum = np.column_stack([np.zeros(len(eta)), cum, np.ones(len(eta))])
        p = np.clip(np.diff(cum, axis=1), EPS, 1.0)
        return p / p.sum(axis=1, keepdims=True)

    def distribution(self, raw: np.ndarray) -> np.ndarray:
        """n x 11 probabilities of the scores 0..10; each row sums to 1."""
        raw = np.asarray(raw, float)
        theta = self._thresholds(self.params_)
        mean_map = getattr(self, "mean_map_", None)  # links pickled before it had none
        if mean_map is None:
            eta = np.exp(self.params_[0]) * (raw - self.shift_) / self.scale_
        else:
            b0, b1, means, grid = mean_map
            eta = np.interp(_soft_clip(b0 + b1 * raw, means[1], means[-2]), means, grid)
        return self._from_eta(eta, theta)


def _soft_clip(x: np.ndarray, low: float, high: float, sharpness: float = 8.0) -> np.ndarray:
    """x inside (low, high), strictly increasing everywhere and ~x well inside the bounds: a
    mean past 10 stays a (slightly) higher mean, never a tie at the bound."""
    k = sharpness
    return x - np.logaddexp(0.0, k * (x - high)) / k + np.logaddexp(0.0, k * (low - x)) / k


def expected_score(distribution: np.ndarray) -> np.ndarray:
    return distribution @ NPS_SCORES


def category_probabilities(distribution: np.ndarray) -> np.ndarray:
    """n x 3: detractor (0-6), passive (7-8), promoter (9-10)."""
    return np.column_stack([distribution[:, a:b].sum(axis=1) for a, b in CATEGORY_SCORES])
