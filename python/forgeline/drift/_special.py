"""Distribution functions behind the drift p-values, written without scipy.

scipy is not a runtime dependency of forgeline, but its p-values are the reference: every
function here evaluates the same mathematical quantity as the scipy routine named in its
docstring, by the same branch logic where scipy switches between algorithms, so results
agree to rounding (tests check rtol 1e-9 against scipy).
"""

from __future__ import annotations

import math

import numpy as np

from .._native import core

_LOG_2PI = math.log(2.0 * math.pi)
_SQRT2PI = math.sqrt(2.0 * math.pi)
_PI2 = math.pi ** 2
_EPS = 1e-16
_TINY = 1e-300


# --------------------------------------------------------------------------- gamma / beta

def gammaincc(a: float, x: float) -> float:
    """Regularised upper incomplete gamma Q(a, x) (``scipy.special.gammaincc``)."""
    if math.isnan(a) or math.isnan(x) or a <= 0 or x < 0:
        return math.nan
    if x == 0:
        return 1.0
    if math.isinf(x):
        return 0.0
    log_pre = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1.0:
        # series for P, Q = 1 - P (P is not close to 1 on this side, so no cancellation)
        term = 1.0 / a
        total = term
        ap = a
        for _ in range(100000):
            ap += 1.0
            term *= x / ap
            total += term
            if abs(term) < abs(total) * _EPS:
                break
        return max(0.0, 1.0 - total * math.exp(log_pre))
    # continued fraction for Q (modified Lentz)
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, 100000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = _TINY if abs(d) < _TINY else d
        c = b + an / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return math.exp(log_pre) * h


def chi2_sf(x: float, df: float) -> float:
    """Chi-square survival function (``scipy.stats.chi2.sf``)."""
    if math.isnan(x):
        return math.nan
    if x <= 0:
        return 1.0
    return gammaincc(df / 2.0, x / 2.0)


def _betacf(a: float, b: float, x: float) -> float:
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = _TINY if abs(d) < _TINY else d
    d = 1.0 / d
    h = d
    for m in range(1, 100000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = _TINY if abs(d) < _TINY else d
        c = 1.0 + aa / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = _TINY if abs(d) < _TINY else d
        c = 1.0 + aa / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return h


def betainc(a: float, b: float, x: float, one_minus_x: float | None = None) -> float:
    """Regularised incomplete beta I_x(a, b) (``scipy.special.betainc``).

    ``one_minus_x`` may pass 1 - x computed without cancellation.
    """
    y = 1.0 - x if one_minus_x is None else one_minus_x
    if x <= 0:
        return 0.0
    if y <= 0:
        return 1.0
    lbeta = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    front = math.exp(a * math.log(x) + b * math.log(y) - lbeta)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, y) / b


def t_sf_two_sided(t: float, df: float) -> float:
    """``2 * scipy.stats.t.sf(|t|, df)``: the two-sided p-value of a t statistic."""
    if math.isnan(t) or math.isnan(df):
        return math.nan
    if math.isinf(t):
        return 0.0
    t2 = t * t
    return min(1.0, betainc(df / 2.0, 0.5, df / (df + t2), t2 / (df + t2)))


# --------------------------------------------------------------------------- Kolmogorov

_E128 = 2.0 ** 128
_EM128 = 2.0 ** -128
_STIRLING = [-2.955065359477124183e-2, 6.4102564102564102564e-3, -1.9175269175269175269e-3,
             8.4175084175084175084e-4, -5.952380952380952381e-4, 7.9365079365079365079e-4,
             -2.7777777777777777778e-3, 8.3333333333333333333e-2]


def _log_nfact_over_npown(n: int) -> float:
    # log(n! / n^n) by Stirling's series with n log n removed up front (no cancellation)
    rn = 1.0 / n
    return math.log(n) / 2 - n + _LOG_2PI / 2 + rn * float(np.polyval(_STIRLING, rn / n))


def _kolmogorov_cdf_durbin(n: int, d: float) -> float:
    """Pr(D_n <= d) by Durbin's matrix method (Marsaglia-Tsang-Wang), scaled powers."""
    nd = n * d
    if nd <= 0.5:
        return 0.0
    k = int(math.ceil(nd))
    h = k - nd
    m = 2 * k - 1
    powers = np.arange(1, m + 1)
    v = 1.0 - h ** powers
    w = np.empty(m)
    fac = 1.0
    for j in range(1, m + 1):
        w[j - 1] = fac
        fac /= j
        v[j - 1] *= fac
    v[-1] = (1.0 + max(2 * h - 1.0, 0.0) ** m - 2 * h ** m) * fac
    H = np.zeros((m, m))
    for i in range(1, m):
        H[i - 1:, i] = w[:m - i + 1]
    H[:, 0] = v
    H[-1, :] = v[::-1]
    acc = np.eye(m)
    e_acc = 0
    e_h = 0
    nn = n
    while nn > 0:
        if nn % 2:
            acc = acc @ H
            e_acc += e_h
        H = H @ H
        e_h *= 2
        if abs(H[k - 1, k - 1]) > _E128:
            H = H / _E128
            e_h += 128
        nn //= 2
    p = float(acc[k - 1, k - 1])
    if p <= 0:
        return 0.0
    logp = math.log(p) + e_acc * math.log(2.0) + _log_nfact_over_npown(n)
    return math.exp(logp)


def _pomeranz_bounds(i, n, ll, ceilf, roundf):
    if i == 0:
        j1, j2 = -ll - ceilf - 1, ll + ceilf - 1
    else:
        half, odd = divmod(i + 1, 2)
        if odd == 0:
            if half == n + 1:
                j1, j2 = n - ll - ceilf - 1, n + ll + ceilf - 1
            else:
                j1, j2 = half - 1 - ll - roundf - 1, half + ll - 1 + ceilf - 1
        else:
            j1, j2 = half - 1 - ll - 1, half + ll + roundf - 1
    return max(j1 + 2, 0), min(j2, n)


def _kolmogorov_cdf_pomeranz(n: int, x: float) -> float:
    """Pr(D_n <= x) by Pomeranz's recursion (used for n <= 140)."""
    t = n * x
    ll = int(math.floor(t))
    f = t - ll
    g = min(f, 1.0 - f)
    ceilf = 1 if f > 0 else 0
    roundf = 1 if f > 0.5 else 0
    npw = 2 * (ll + 1)
    gp, g2p, g12p = np.empty(npw), np.empty(npw), np.empty(npw)
    gp[0] = g2p[0] = g12p[0] = 1.0
    for mm in range(1, npw):
        gp[mm] = gp[mm - 1] * (g / n) / mm
        g2p[mm] = g2p[mm - 1] * (2 * g / n) / mm
        g12p[mm] = g12p[mm - 1] * ((1 - 2 * g) / n) / mm
    v0 = np.zeros(npw)
    v1 = np.zeros(npw)
    v1[0] = 1.0
    s0 = s1 = 0
    expnt = 0
    j1, j2 = _pomeranz_bounds(0, n, ll, ceilf, roundf)
    for i in range(1, 2 * n + 2):
        k1 = j1
        v0, v1 = v1, v0
        s0, s1 = s1, s0
        v1.fill(0.0)
        j1, j2 = _pomeranz_bounds(i, n, ll, ceilf, roundf)
        pw = gp if (i == 1 or i == 2 * n + 1) else (g2p if i % 2 else g12p)
        width = j2 - k1 + 1
        if width > 0:
            conv = np.convolve(v0[k1 - s0:k1 - s0 + width], pw[:width])
            start = j1 - k1
            length = j2 - j1 + 1
            v1[:length] = conv[start:start + length]
            top = np.max(v1)
            if 0 < top < _EM128:
                v1 *= _E128
                expnt -= 128
            s1 = s0 + j1 - k1
    ans = float(v1[n - s1])
    for mm in range(1, n + 1):
        if abs(ans) > _E128:
            ans *= _EM128
            expnt += 128
        ans *= mm
    return math.ldexp(ans, expnt) if expnt else ans


def _kolmogorov_cdf_pelz_good(n: int, x: float) -> float:
    """Pelz-Good asymptotic expansion of Pr(D_n <= x)."""
    z = math.sqrt(n) * x
    z2, z3, z4, z6 = z * z, z ** 3, z ** 4, z ** 6
    qlog = -_PI2 / 8 / z2
    if qlog < -708:
        return 0.0
    q = math.exp(qlog)
    k1a, k1b = -z2, _PI2 / 4
    k2a, k2b, k2c = 6 * z6 + 2 * z4, (2 * z4 - 5 * z2) * _PI2 / 4, math.pi ** 4 * (1 - 2 * z2) / 16
    k3d = math.pi ** 6 * (5 - 30 * z2) / 64
    k3c = math.pi ** 4 * (-60 * z2 + 212 * z4) / 16
    k3b = _PI2 * (135 * z4 - 96 * z6) / 4
    k3a = -30 * z6 - 90 * z ** 8
    acc = np.zeros(4)
    maxk = int(math.ceil(16 * z / math.pi))
    for k in range(maxk, 0, -1):
        m = 2 * k - 1
        m2, m4, m6 = m * m, m ** 4, m ** 6
        acc *= q ** (8 * k)
        acc += np.array([1.0, k1a + k1b * m2, k2a + k2b * m2 + k2c * m4,
                         k3a + k3b * m2 + k3c * m4 + k3d * m6])
    acc *= q * _SQRT2PI
    acc /= np.array([z, 6 * z4, 72 * z ** 7, 6480 * z ** 10])
    q2 = math.exp(-_PI2 / 2 / z2)
    ks = np.arange(maxk, 0, -1)
    ks2 = ks ** 2
    qp = q2 ** ks2
    s3z = math.sqrt(3) * z
    kpi = math.pi * ks
    acc[2] += np.sum(ks2 * qp) * _PI2 * _SQRT2PI / (-36 * z3)
    acc[3] += np.sum((s3z + kpi) * (s3z - kpi) * ks2 * qp) * _PI2 * _SQRT2PI / (216 * z6)
    acc /= np.power(float(n), np.arange(4) / 2.0)
    return float(sum(acc))


def _clip(p: float) -> float:
    return min(1.0, max(0.0, p))


def kolmogorov_sf(n: int, x: float) -> float:
    """Two-sided one-sample Kolmogorov survival function ``scipy.stats.kstwo.sf(x, n)``.

    Follows Simard & L'Ecuyer's choice of algorithm by (n, n x^2) exactly as scipy does:
    Ruben-Gambino closed forms at the ends, the exact Smirnov sum, Durbin's matrix, Pomeranz
    and the Pelz-Good expansion.
    """
    if x >= 1.0:
        return 0.0
    if x <= 0.0:
        return 1.0
    t = n * x
    if t <= 1.0:
        if t <= 0.5:
            return 1.0
        if n <= 140:
            prob = float(np.prod(np.arange(1, n + 1) * (1.0 / n) * (2 * t - 1)))
        else:
            prob = math.exp(_log_nfact_over_npown(n) + n * math.log(2 * t - 1))
        return _clip(1.0 - prob)
    if t >= n - 1:
        return _clip(2 * (1.0 - x) ** n)
    if x >= 0.5:
        return _clip(2 * core._drift_smirnov_sf(n, x))
    nx2 = t * x
    if n <= 140:
        if nx2 <= 0.754693:
            return _clip(1.0 - _kolmogorov_cdf_durbin(n, x))
        if nx2 <= 4:
            return _clip(1.0 - _kolmogorov_cdf_pomeranz(n, x))
        return _clip(2 * core._drift_smirnov_sf(n, x))
    if nx2 >= 370.0:
        return 0.0
    if nx2 >= 2.2:
        return _clip(2 * core._drift_smirnov_sf(n, x))
    if nx2 >= 18.0:
        cdf = 1.0
    elif n <= 100000 and n * x ** 1.5 <= 1.4:
        cdf = _kolmogorov_cdf_durbin(n, x)
    else:
        cdf = _kolmogorov_cdf_pelz_good(n, x)
    return _clip(1.0 - cdf)


def ks_2samp_pvalue(d: float, n1: int, n2: int) -> tuple[float, float, str]:
    """Two-sided p-value of the two-sample KS statistic, as ``scipy.stats.ks_2samp``
    (``method="auto"``): exact when both sizes are <= 10000, asymptotic otherwise.

    Returns ``(d, p, method)``; in the exact branch ``d`` is snapped to h / lcm(n1, n2)
    the way scipy does.
    """
    mode = "exact" if max(n1, n2) <= 10000 else "asymp"
    if mode == "exact":
        g = math.gcd(n1, n2)
        lcm = (n1 // g) * n2
        h = int(np.round(d * lcm))
        d_exact = h * 1.0 / lcm
        if h == 0:
            return d_exact, 1.0, "exact"
        prob = core._drift_ks_exact(n1, n2, h)
        if math.isfinite(prob) and 0.0 <= prob <= 1.0:
            return d_exact, prob, "exact"
        d = d_exact  # scipy falls back to the asymptotic formula with the snapped d
    m, n = sorted([float(n1), float(n2)], reverse=True)
    en = m * n / (m + n)
    return d, _clip(kolmogorov_sf(int(np.round(en)), d)), "asymp"


# --------------------------------------------------------------------------- Cramer-von Mises

def _kve_quarter(q: float) -> float:
    """exp(q) * K_{1/4}(q) from K_nu(q) = int_0^inf exp(-q cosh t) cosh(nu t) dt.

    The integrand is analytic and decays doubly exponentially, so the trapezoid rule with a
    modest step is accurate to rounding.
    """
    tmax = max(1.0, math.acosh(1.0 + 760.0 / q)) if q > 0 else 40.0
    t = np.linspace(0.0, tmax, 2049)
    h = t[1] - t[0]
    f = np.exp(-q * (np.cosh(t) - 1.0)) * np.cosh(0.25 * t)
    return float(h * (f.sum() - 0.5 * f[0] - 0.5 * f[-1]))


def cvm_cdf_inf(x: float) -> float:
    """Limiting CDF of the Cramer-von Mises statistic (scipy's ``_cdf_cvm_inf``), with the
    same series truncation (stop after the first term below 1e-7)."""
    total = 0.0
    k = 0
    while True:
        u = math.exp(math.lgamma(k + 0.5) - math.lgamma(k + 1)) / (math.pi ** 1.5 * math.sqrt(x))
        y = 4 * k + 1
        q = y * y / (16 * x)
        z = u * math.sqrt(y) * math.exp(-2.0 * q) * _kve_quarter(q)
        total += z
        if abs(z) < 1e-7:
            break
        k += 1
    return total


def cvm_2samp_pvalue(u: float, nx: int, ny: int) -> tuple[float, float]:
    """(statistic T, p-value) of the two-sample Cramer-von Mises test from its U statistic,
    as ``scipy.stats.cramervonmises_2samp(method="auto")``: exact enumeration when both
    samples have at most 20 values, the limiting distribution otherwise."""
    k, N = nx * ny, nx + ny
    t = u / (k * N) - (4 * k - 1) / (6 * N)
    if max(nx, ny) <= 20:
        return t, _cvm_exact_pvalue(u, nx, ny)
    et = (1 + 1 / N) / 6
    vt = (N + 1) * (4 * k * N - 3 * (nx ** 2 + ny ** 2) - 2 * k)
    vt = vt / (45 * N ** 2 * 4 * k)
    tn = 1 / 6 + (t - et) / math.sqrt(45 * vt)
    if tn < 0.003:
        return t, 1.0
    return t, max(0.0, 1.0 - cvm_cdf_inf(tn))


def _cvm_exact_pvalue(s: float, m: int, n: int) -> float:
    # Distribution of sum over lattice-path points of (a v - b u)^2 (Xiao, Gordon & Yakovlev
    # 2006), counted with exact integer frequencies.
    lcm = math.lcm(m, n)
    a, b = lcm // m, lcm // n
    mn = m * n
    zeta = lcm ** 2 * (m + n) * (6 * s - mn * (4 * mn - 1)) // (6 * mn ** 2)
    prev: list[dict[int, int]] = [dict() for _ in range(m + 1)]
    prev[0] = {0: 1}
    for uu in range(n + 1):
        cur: list[dict[int, int]] = []
        acc: dict[int, int] = {}
        for v in range(m + 1):
            merged = dict(acc)
            for val, fr in prev[v].items():
                merged[val] = merged.get(val, 0) + fr
            add = (a * v - b * uu) ** 2
            acc = {val + add: fr for val, fr in merged.items()}
            cur.append(acc)
        prev = cur
    hits = sum(fr for val, fr in prev[m].items() if val >= zeta)
    return float(np.float64(hits) / math.comb(m + n, m))


# --------------------------------------------------------------------------- Anderson-Darling

_AD_B0 = np.array([0.675, 1.281, 1.645, 1.96, 2.326, 2.573, 3.085])
_AD_B1 = np.array([-0.245, 0.25, 0.678, 1.149, 1.822, 2.364, 3.615])
_AD_B2 = np.array([-0.105, -0.305, -0.362, -0.391, -0.396, -0.345, -0.154])
_AD_SIG = np.array([0.25, 0.1, 0.05, 0.025, 0.01, 0.005, 0.001])


def ad_2samp(a2akn: float, n1: int, n2: int) -> tuple[float, float]:
    """Normalised k-sample Anderson-Darling statistic and its interpolated p-value for two
    samples, as ``scipy.stats.anderson_ksamp(variant="midrank")``. The p-value is
    interpolated from Scholz & Stephens' table and therefore capped to [0.001, 0.25]."""
    k = 2
    n = np.array([n1, n2])
    N = n1 + n2
    H = (1.0 / n).sum()
    hs_cs = (1.0 / np.arange(N - 1, 1, -1)).cumsum()
    h = hs_cs[-1] + 1
    g = (hs_cs / np.arange(2, N)).sum()
    a = (4 * g - 6) * (k - 1) + (10 - 6 * g) * H
    b = (2 * g - 4) * k ** 2 + 8 * h * k + (2 * g - 14 * h - 4) * H - 8 * h + 4 * g - 6
    c = (6 * h + 2 * g - 2) * k ** 2 + (4 * h - 4 * g + 6) * k + (2 * h - 6) * H + 4 * h
    d = (2 * h + 6) * k ** 2 - 4 * h * k
    sigmasq = (a * N ** 3 + b * N ** 2 + c * N + d) / ((N - 1.0) * (N - 2.0) * (N - 3.0))
    m = k - 1
    A2 = (a2akn - m) / math.sqrt(sigmasq)
    critical = _AD_B0 + _AD_B1 / math.sqrt(m) + _AD_B2 / m
    if A2 < critical.min():
        p = float(_AD_SIG.max())
    elif A2 > critical.max():
        p = float(_AD_SIG.min())
    else:
        pf = np.polyfit(critical, np.log(_AD_SIG), 2)
        p = math.exp(np.polyval(pf, A2))
    return float(A2), p
