//! Maximum-likelihood fits of the distribution families a profile can name, the choice
//! between them by AIC, and the Kolmogorov–Smirnov statistic of the chosen one.
//!
//! Observations come in three kinds: exact values; values known only to a grid of width
//! `w` (the difference of two timestamps logged to the whole second: the true interval
//! `x` shows as `floor(x)` or `floor(x) + 1`, with probability `1 − |x − d|/w` of showing
//! as `d`, a triangular window); and right-censored values (a session still open, or a
//! gap still running, when the log ends). The likelihood of each kind is the density,
//! the triangular-window probability and the survival function respectively, so ties
//! from second-resolution logs do not pull the fit towards a lattice.

use statrs::distribution::{
    Continuous, ContinuousCDF, Exp, Gamma, LogNormal, Normal, Pareto, Uniform, Weibull,
};

use crate::duration::Dur;
use crate::profile::Distribution;

/// The families fitted, in the order ties are broken.
pub const FAMILIES: [Family; 7] = [
    Family::Exponential,
    Family::LogNormal,
    Family::Weibull,
    Family::Gamma,
    Family::Normal,
    Family::Pareto,
    Family::Uniform,
];

/// A distribution family of the profile model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Exponential,
    LogNormal,
    Weibull,
    Gamma,
    Normal,
    Pareto,
    Uniform,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::Exponential => "exponential",
            Family::LogNormal => "lognormal",
            Family::Weibull => "weibull",
            Family::Gamma => "gamma",
            Family::Normal => "normal",
            Family::Pareto => "pareto",
            Family::Uniform => "uniform",
        }
    }

    /// Number of free parameters (for AIC).
    fn parameters(self) -> usize {
        match self {
            Family::Exponential => 1,
            _ => 2,
        }
    }
}

/// Observed values of one quantity.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Values known exactly.
    pub exact: Vec<f64>,
    /// Values known to the grid of `resolution` (see the module documentation).
    pub rounded: Vec<f64>,
    /// The grid width of `rounded` (in the sample's unit).
    pub resolution: f64,
    /// Values known only to be larger than this.
    pub right_censored: Vec<f64>,
}

impl Sample {
    /// Observations that are not censored.
    pub fn observed(&self) -> usize {
        self.exact.len() + self.rounded.len()
    }

    /// The mean of the uncensored observations.
    pub fn mean(&self) -> f64 {
        let n = self.observed();
        if n == 0 {
            return 0.0;
        }
        (self.exact.iter().sum::<f64>() + self.rounded.iter().sum::<f64>()) / n as f64
    }

    /// Scales every value (and the grid) by `factor` (e.g. wall → simulated seconds).
    pub fn scaled(mut self, factor: f64) -> Self {
        for v in self
            .exact
            .iter_mut()
            .chain(&mut self.rounded)
            .chain(&mut self.right_censored)
        {
            *v *= factor;
        }
        self.resolution *= factor;
        self
    }
}

/// A family with its parameters: exponential (mean), lognormal (μ, σ of the log),
/// weibull (shape, scale), gamma (shape, scale), normal (mean, sd), pareto (shape,
/// scale = minimum), uniform (min, max).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fitted {
    pub family: Family,
    pub a: f64,
    pub b: f64,
}

enum Law {
    Exp(Exp),
    LogNormal(LogNormal),
    Weibull(Weibull),
    Gamma(Gamma),
    Normal(Normal),
    Pareto(Pareto),
    Uniform(Uniform),
}

impl Law {
    fn pdf(&self, x: f64) -> f64 {
        match self {
            Law::Exp(d) => d.pdf(x),
            Law::LogNormal(d) => d.pdf(x),
            Law::Weibull(d) => d.pdf(x),
            Law::Gamma(d) => d.pdf(x),
            Law::Normal(d) => d.pdf(x),
            Law::Pareto(d) => d.pdf(x),
            Law::Uniform(d) => d.pdf(x),
        }
    }
    fn ln_pdf(&self, x: f64) -> f64 {
        match self {
            Law::Exp(d) => d.ln_pdf(x),
            Law::LogNormal(d) => d.ln_pdf(x),
            Law::Weibull(d) => d.ln_pdf(x),
            Law::Gamma(d) => d.ln_pdf(x),
            Law::Normal(d) => d.ln_pdf(x),
            Law::Pareto(d) => d.ln_pdf(x),
            Law::Uniform(d) => d.ln_pdf(x),
        }
    }
    fn cdf(&self, x: f64) -> f64 {
        match self {
            Law::Exp(d) => d.cdf(x),
            Law::LogNormal(d) => d.cdf(x),
            Law::Weibull(d) => d.cdf(x),
            Law::Gamma(d) => d.cdf(x),
            Law::Normal(d) => d.cdf(x),
            Law::Pareto(d) => d.cdf(x),
            Law::Uniform(d) => d.cdf(x),
        }
    }
    fn sf(&self, x: f64) -> f64 {
        match self {
            Law::Exp(d) => d.sf(x),
            Law::LogNormal(d) => d.sf(x),
            Law::Weibull(d) => d.sf(x),
            Law::Gamma(d) => d.sf(x),
            Law::Normal(d) => d.sf(x),
            Law::Pareto(d) => d.sf(x),
            Law::Uniform(d) => d.sf(x),
        }
    }
}

impl Fitted {
    fn law(&self) -> Option<Law> {
        let (a, b) = (self.a, self.b);
        if !(a.is_finite() && b.is_finite()) {
            return None;
        }
        Some(match self.family {
            Family::Exponential => Law::Exp(Exp::new(1.0 / a).ok()?),
            Family::LogNormal => Law::LogNormal(LogNormal::new(a, b).ok()?),
            Family::Weibull => Law::Weibull(Weibull::new(a, b).ok()?),
            Family::Gamma => Law::Gamma(Gamma::new(a, 1.0 / b).ok()?),
            Family::Normal => Law::Normal(Normal::new(a, b).ok()?),
            Family::Pareto => Law::Pareto(Pareto::new(b, a).ok()?),
            Family::Uniform => Law::Uniform(Uniform::new(a, b).ok()?),
        })
    }

    /// The mean of the distribution.
    pub fn mean(&self) -> f64 {
        let (a, b) = (self.a, self.b);
        match self.family {
            Family::Exponential => a,
            Family::LogNormal => (a + b * b / 2.0).exp(),
            Family::Weibull => b * statrs::function::gamma::gamma(1.0 + 1.0 / a),
            Family::Gamma => a * b,
            Family::Normal => a,
            Family::Pareto if a > 1.0 => a * b / (a - 1.0),
            Family::Pareto => f64::INFINITY,
            Family::Uniform => (a + b) / 2.0,
        }
    }

    /// The CDF at `x`.
    pub fn cdf(&self, x: f64) -> f64 {
        self.law().map_or(f64::NAN, |l| l.cdf(x))
    }

    /// The profile's interval (`seconds`) or size (plain numbers) for this fit; `None`
    /// when the profile cannot express it (a pareto with an infinite mean).
    pub fn to_distribution(&self) -> Option<Distribution> {
        let d = |v: f64| Dur(std::time::Duration::from_secs_f64(round_sig(v.max(0.0))));
        let (a, b) = (self.a, self.b);
        let shape = round_sig(a);
        Some(match self.family {
            Family::Exponential => Distribution::Exponential { mean: d(a) },
            Family::LogNormal => {
                let mean = self.mean();
                let sd = mean * ((b * b).exp() - 1.0).sqrt();
                if sd.is_nan() || sd >= MAX_VALUE {
                    return None;
                }
                Distribution::LogNormal {
                    mean: d(mean),
                    std_dev: d(sd),
                }
            }
            Family::Weibull => Distribution::Weibull { shape, scale: d(b) },
            Family::Gamma => Distribution::Gamma { shape, scale: d(b) },
            Family::Normal => Distribution::Normal {
                mean: d(a),
                std_dev: d(b),
            },
            Family::Pareto if a > 1.0 => Distribution::Pareto { shape, scale: d(b) },
            Family::Pareto => return None,
            Family::Uniform => Distribution::Uniform {
                min: d(a),
                max: d(b),
            },
        })
        .filter(|dist| {
            let mean = dist.mean_secs();
            mean > 0.0 && mean < MAX_VALUE && [a, b].iter().all(|v| v.abs() < MAX_VALUE)
        })
    }
}

/// Larger parameters or means (over 30 years, or 10¹² bytes) are not plausible fits.
const MAX_VALUE: f64 = 1e9;

/// `v` to 6 significant digits (and whole nanoseconds once converted), so fitted
/// values print short and read back equal.
fn round_sig(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let magnitude = v.abs().log10().floor() as i32;
    let factor = 10f64.powi(5 - magnitude);
    let rounded = (v * factor).round() / factor;
    (rounded * 1e9).round() / 1e9
}

/// One candidate's fit.
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    pub fitted: Fitted,
    pub log_lik: f64,
    pub aic: f64,
}

/// The chosen fit of a sample.
#[derive(Debug, Clone)]
pub struct FitResult {
    pub best: Candidate,
    pub runner_up: Option<Candidate>,
    /// Uncensored observations.
    pub n: usize,
    /// Right-censored observations.
    pub censored: usize,
    /// Whether the sample was fitted as interval-censored (second-resolution ties).
    pub interval_censored: bool,
    /// Kolmogorov–Smirnov statistic of the best fit against the uncensored data.
    pub ks_d: f64,
    /// Its asymptotic p-value (parameters estimated from the same data make it
    /// conservative, i.e. too large).
    pub ks_p: f64,
}

/// Fits every family in `families` and returns the best by AIC; `None` with fewer than
/// 2 observations or when no family fits.
pub fn fit(sample: &Sample, families: &[Family]) -> Option<FitResult> {
    let data = Prepared::new(sample);
    if data.n() < 2 {
        return None;
    }
    let thinned = data.needs_likelihood_search().then(|| data.thinned());
    let mut candidates: Vec<Candidate> = families
        .iter()
        .filter_map(|&family| {
            let start = point_estimate(family, &data)?;
            let fitted = match &thinned {
                Some(thinned) => refine(start, thinned),
                None => start,
            };
            // Only what a profile can say: finite means, parameters within bounds.
            fitted.to_distribution()?;
            let log_lik = data.log_lik(&fitted);
            log_lik.is_finite().then(|| Candidate {
                fitted,
                log_lik,
                aic: 2.0 * family.parameters() as f64 - 2.0 * log_lik,
            })
        })
        .collect();
    candidates.sort_by(|a, b| a.aic.total_cmp(&b.aic));
    let best = *candidates.first()?;
    let (ks_d, ks_p) = data.ks(&best.fitted);
    Some(FitResult {
        best,
        runner_up: candidates.get(1).copied(),
        n: data.n(),
        censored: sample.right_censored.len(),
        interval_censored: !data.rounded.is_empty(),
        ks_d,
        ks_p,
    })
}

/// A sample ready for likelihoods: exact values sorted, rounded ones grouped.
struct Prepared {
    exact: Vec<f64>,
    /// (value, count), ascending.
    rounded: Vec<(f64, usize)>,
    rounded_n: usize,
    width: f64,
    censored: Vec<f64>,
}

impl Prepared {
    fn new(sample: &Sample) -> Self {
        let mut exact: Vec<f64> = sample
            .exact
            .iter()
            .copied()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .collect();
        exact.sort_by(f64::total_cmp);
        let mut values: Vec<f64> = sample
            .rounded
            .iter()
            .copied()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .collect();
        values.sort_by(f64::total_cmp);
        let mut rounded: Vec<(f64, usize)> = Vec::new();
        for v in &values {
            match rounded.last_mut() {
                Some((last, count)) if *last == *v => *count += 1,
                _ => rounded.push((*v, 1)),
            }
        }
        Prepared {
            exact,
            rounded_n: values.len(),
            rounded,
            width: sample.resolution.max(f64::MIN_POSITIVE),
            censored: sample
                .right_censored
                .iter()
                .copied()
                .filter(|v| v.is_finite() && *v > 0.0)
                .collect(),
        }
    }

    fn n(&self) -> usize {
        self.exact.len() + self.rounded_n
    }

    fn needs_likelihood_search(&self) -> bool {
        !self.rounded.is_empty() || !self.censored.is_empty()
    }

    /// Point values for starting estimates: exact ones, rounded ones at their grid
    /// value (0 moved to a quarter step, so log-scale families get a start).
    fn points(&self) -> impl Iterator<Item = f64> + '_ {
        let quarter = self.width / 4.0;
        self.exact.iter().copied().chain(
            self.rounded
                .iter()
                .flat_map(move |&(v, c)| std::iter::repeat_n(v.max(quarter), c)),
        )
    }

    fn log_lik(&self, f: &Fitted) -> f64 {
        log_lik_of(
            f,
            &self.exact,
            1.0,
            &self.rounded,
            self.width,
            &self.censored,
            1.0,
        )
    }

    /// A systematic sample of at most [`SEARCH_SAMPLE`] values of each kind, weighted
    /// up to the whole: the likelihood search on a GB of log stays fast, and sampling
    /// evenly through the sorted values keeps the shape of the data.
    fn thinned(&self) -> Thinned {
        let (exact, exact_weight) = thin(&self.exact);
        let (censored, censored_weight) = {
            let mut sorted = self.censored.clone();
            sorted.sort_by(f64::total_cmp);
            thin(&sorted)
        };
        let step = self.rounded.len().div_ceil(SEARCH_SAMPLE).max(1);
        let rounded = self
            .rounded
            .chunks(step)
            .map(|chunk| {
                let mid = chunk[chunk.len() / 2].0;
                (mid, chunk.iter().map(|&(_, c)| c).sum())
            })
            .collect();
        Thinned {
            exact,
            exact_weight,
            rounded,
            width: self.width,
            censored,
            censored_weight,
        }
    }

    /// KS statistic and p-value of `f` against the uncensored observations (the
    /// rounded ones against the distribution of the rounded value).
    fn ks(&self, f: &Fitted) -> (f64, f64) {
        let Some(law) = f.law() else {
            return (1.0, 0.0);
        };
        let (d, n) = if self.rounded_n >= self.exact.len() {
            let n = self.rounded_n as f64;
            let mut below = 0usize;
            let mut d: f64 = 0.0;
            for &(v, count) in &self.rounded {
                let model_before = rounded_cdf(&law, v - self.width, self.width);
                d = d.max((below as f64 / n - model_before).abs());
                below += count;
                let model = rounded_cdf(&law, v, self.width);
                d = d.max((below as f64 / n - model).abs());
            }
            (d, n)
        } else {
            let n = self.exact.len() as f64;
            let mut d: f64 = 0.0;
            for (i, &x) in self.exact.iter().enumerate() {
                let c = law.cdf(x);
                d = d.max(c - i as f64 / n).max((i + 1) as f64 / n - c);
            }
            (d, n)
        };
        (d, kolmogorov_p(d, n))
    }
}

/// Values of each kind the likelihood search uses (see [`Prepared::thinned`]).
const SEARCH_SAMPLE: usize = 20_000;

struct Thinned {
    exact: Vec<f64>,
    exact_weight: f64,
    rounded: Vec<(f64, usize)>,
    width: f64,
    censored: Vec<f64>,
    censored_weight: f64,
}

impl Thinned {
    fn log_lik(&self, f: &Fitted) -> f64 {
        log_lik_of(
            f,
            &self.exact,
            self.exact_weight,
            &self.rounded,
            self.width,
            &self.censored,
            self.censored_weight,
        )
    }
}

/// Every `k`-th of sorted `values` (the middle of each stratum) and the weight `k`.
fn thin(values: &[f64]) -> (Vec<f64>, f64) {
    if values.len() <= SEARCH_SAMPLE {
        return (values.to_vec(), 1.0);
    }
    let k = values.len().div_ceil(SEARCH_SAMPLE);
    let sample: Vec<f64> = values.chunks(k).map(|c| c[c.len() / 2]).collect();
    let weight = values.len() as f64 / sample.len() as f64;
    (sample, weight)
}

/// Log-likelihood of exact values (density), grid values (window probability) and
/// right-censored ones (survival), each kind with a weight.
fn log_lik_of(
    f: &Fitted,
    exact: &[f64],
    exact_weight: f64,
    rounded: &[(f64, usize)],
    width: f64,
    censored: &[f64],
    censored_weight: f64,
) -> f64 {
    let Some(law) = f.law() else {
        return f64::NEG_INFINITY;
    };
    let exact: f64 = exact.iter().map(|&x| law.ln_pdf(x)).sum();
    let rounded: f64 = rounded
        .iter()
        .map(|&(d, count)| count as f64 * window_probability(&law, d, width).ln())
        .sum();
    let censored: f64 = censored.iter().map(|&c| law.sf(c).ln()).sum();
    let total = exact * exact_weight + rounded + censored * censored_weight;
    if total.is_nan() {
        f64::NEG_INFINITY
    } else {
        total
    }
}

/// P(the value shows as `d` on a grid of `w`) = ∫ (1 − |x − d|/w) f(x) dx over
/// [d − w, d + w].
fn window_probability(law: &Law, d: f64, w: f64) -> f64 {
    let rising = gauss_legendre((d - w).max(0.0), d, |x| (1.0 - (d - x) / w) * law.pdf(x));
    let falling = gauss_legendre(d, d + w, |x| (1.0 - (x - d) / w) * law.pdf(x));
    (rising + falling).max(f64::MIN_POSITIVE)
}

/// P(the value shows as ≤ `d` on a grid of `w`).
fn rounded_cdf(law: &Law, d: f64, w: f64) -> f64 {
    if d < 0.0 {
        return 0.0;
    }
    law.cdf(d) + gauss_legendre(d, d + w, |x| (1.0 - (x - d) / w) * law.pdf(x))
}

/// ∫ₐᵇ g over [a, b], 8-point Gauss–Legendre on each half (the window kernels are
/// smooth on each half; the nodes avoid a density's singular end at 0).
fn gauss_legendre(a: f64, b: f64, g: impl Fn(f64) -> f64) -> f64 {
    const NODES: [(f64, f64); 4] = [
        (0.183_434_642_495_649_8, 0.362_683_783_378_362),
        (0.525_532_409_916_329, 0.313_706_645_877_887_3),
        (0.796_666_477_413_626_7, 0.222_381_034_453_374_5),
        (0.960_289_856_497_536_3, 0.101_228_536_290_376_3),
    ];
    if b <= a {
        return 0.0;
    }
    let mid = (a + b) / 2.0;
    let mut total = 0.0;
    for (lo, hi) in [(a, mid), (mid, b)] {
        let (c, h) = ((lo + hi) / 2.0, (hi - lo) / 2.0);
        for (x, weight) in NODES {
            total += h * weight * (g(c - h * x) + g(c + h * x));
        }
    }
    total
}

/// Asymptotic Kolmogorov p-value of statistic `d` for `n` observations (with Stephens'
/// small-sample correction).
pub fn kolmogorov_p(d: f64, n: f64) -> f64 {
    if n <= 0.0 {
        return 0.0;
    }
    let lambda = (n.sqrt() + 0.12 + 0.11 / n.sqrt()) * d;
    if lambda < 0.2 {
        return 1.0;
    }
    let mut sum = 0.0;
    for k in 1..=100 {
        let k = f64::from(k);
        let term = (-2.0 * k * k * lambda * lambda).exp();
        sum += if k as i64 % 2 == 1 { term } else { -term };
        if term < 1e-12 {
            break;
        }
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

/// The maximum-likelihood estimate for exact data (a starting point otherwise).
fn point_estimate(family: Family, data: &Prepared) -> Option<Fitted> {
    let points: Vec<f64> = data.points().collect();
    let n = points.len() as f64;
    if n < 2.0 {
        return None;
    }
    let mean = points.iter().sum::<f64>() / n;
    let fitted = |a: f64, b: f64| Some(Fitted { family, a, b });
    let positive = points.iter().all(|&x| x > 0.0);
    match family {
        Family::Exponential => (mean > 0.0).then_some(())?,
        Family::Normal => {}
        _ => positive.then_some(())?,
    }
    match family {
        Family::Exponential => fitted(mean, 0.0),
        Family::Normal => {
            let var = points.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
            (var > 0.0).then_some(())?;
            fitted(mean, var.sqrt())
        }
        Family::LogNormal => {
            let mu = points.iter().map(|x| x.ln()).sum::<f64>() / n;
            let var = points.iter().map(|x| (x.ln() - mu).powi(2)).sum::<f64>() / n;
            (var > 0.0).then_some(())?;
            fitted(mu, var.sqrt())
        }
        Family::Gamma => {
            let mean_ln = points.iter().map(|x| x.ln()).sum::<f64>() / n;
            let s = mean.ln() - mean_ln;
            (s > 0.0).then_some(())?;
            // Minka's start, then Newton on ln k − ψ(k) = s.
            let mut k = (3.0 - s + ((s - 3.0).powi(2) + 24.0 * s).sqrt()) / (12.0 * s);
            for _ in 0..50 {
                let g = k.ln() - statrs::function::gamma::digamma(k) - s;
                let h = 1e-6 * k;
                let dg = ((k + h).ln() - statrs::function::gamma::digamma(k + h) - s - g) / h;
                if dg == 0.0 || !dg.is_finite() {
                    break;
                }
                let next = (k - g / dg).max(k / 10.0);
                if (next - k).abs() < 1e-10 * k {
                    k = next;
                    break;
                }
                k = next;
            }
            fitted(k, mean / k)
        }
        Family::Weibull => {
            let logs: Vec<f64> = points.iter().map(|x| x.ln()).collect();
            let mean_ln = logs.iter().sum::<f64>() / n;
            let max_ln = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            // g(k) = Σ xᵏ ln x / Σ xᵏ − 1/k − mean(ln x) rises with k: bisect on ln k.
            let g = |k: f64| {
                let (mut num, mut den) = (0.0, 0.0);
                for &l in &logs {
                    let w = (k * (l - max_ln)).exp();
                    num += w * l;
                    den += w;
                }
                num / den - 1.0 / k - mean_ln
            };
            let (mut lo, mut hi) = (0.02f64.ln(), 50f64.ln());
            if g(lo.exp()) > 0.0 || g(hi.exp()) < 0.0 {
                return None;
            }
            for _ in 0..60 {
                let mid = (lo + hi) / 2.0;
                if g(mid.exp()) < 0.0 {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            let k = ((lo + hi) / 2.0).exp();
            let scaled = logs.iter().map(|&l| (k * (l - max_ln)).exp()).sum::<f64>() / n;
            fitted(k, max_ln.exp() * scaled.powf(1.0 / k))
        }
        Family::Pareto => {
            let min = points.iter().copied().fold(f64::INFINITY, f64::min);
            let min = if data.rounded.is_empty() {
                min
            } else {
                (min - data.width / 2.0).max(min / 2.0)
            };
            let sum: f64 = points.iter().map(|x| (x / min).ln()).sum();
            (sum > 0.0).then_some(())?;
            fitted(n / sum, min)
        }
        Family::Uniform => {
            let (min, max) = points
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
                    (lo.min(x), hi.max(x))
                });
            let slack = if data.rounded.is_empty() {
                0.0
            } else {
                data.width
            };
            let max = max.max(data.censored.iter().copied().fold(0.0, f64::max));
            (max > min).then_some(())?;
            fitted((min - slack).max(0.0), max + slack)
        }
    }
}

/// Maximises the likelihood from `start` (Nelder–Mead on unconstrained parameters).
/// Pareto and uniform keep their boundary estimates.
fn refine(start: Fitted, data: &Thinned) -> Fitted {
    let family = start.family;
    if matches!(family, Family::Pareto | Family::Uniform) {
        return start;
    }
    let objective = |p: &[f64; 2]| -data.log_lik(&from_free(family, *p));
    from_free(
        family,
        nelder_mead(objective, to_free(&start), family.parameters()),
    )
}

/// Parameters on the whole real line: logs of the positive ones.
fn to_free(f: &Fitted) -> [f64; 2] {
    match f.family {
        Family::Exponential => [f.a.ln(), 0.0],
        Family::LogNormal | Family::Normal => [f.a, f.b.ln()],
        _ => [f.a.ln(), f.b.ln()],
    }
}

fn from_free(family: Family, p: [f64; 2]) -> Fitted {
    let (a, b) = match family {
        Family::Exponential => (p[0].exp(), 0.0),
        Family::LogNormal | Family::Normal => (p[0], p[1].exp()),
        _ => (p[0].exp(), p[1].exp()),
    };
    Fitted { family, a, b }
}

/// Minimises `f` over the first `dims` (1 or 2) coordinates.
fn nelder_mead(f: impl Fn(&[f64; 2]) -> f64, start: [f64; 2], dims: usize) -> [f64; 2] {
    let mut simplex: Vec<([f64; 2], f64)> = Vec::with_capacity(dims + 1);
    simplex.push((start, f(&start)));
    for i in 0..dims {
        let mut p = start;
        p[i] += if p[i].abs() > 1e-3 {
            0.1 * p[i].abs()
        } else {
            0.1
        };
        simplex.push((p, f(&p)));
    }
    let combine =
        |a: &[f64; 2], b: &[f64; 2], t: f64| [a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])];
    for _ in 0..500 {
        simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
        let (best, worst) = (simplex[0].1, simplex[dims].1);
        if (worst - best).abs() <= 1e-10 * (1.0 + best.abs()) {
            break;
        }
        let mut centroid = [0.0; 2];
        for (p, _) in &simplex[..dims] {
            centroid[0] += p[0] / dims as f64;
            centroid[1] += p[1] / dims as f64;
        }
        let worst_point = simplex[dims].0;
        let reflected = combine(&centroid, &worst_point, -1.0);
        let fr = f(&reflected);
        if fr < simplex[0].1 {
            let expanded = combine(&centroid, &worst_point, -2.0);
            let fe = f(&expanded);
            simplex[dims] = if fe < fr {
                (expanded, fe)
            } else {
                (reflected, fr)
            };
        } else if fr < simplex[dims - 1].1 {
            simplex[dims] = (reflected, fr);
        } else {
            let contracted = combine(&centroid, &worst_point, 0.5);
            let fc = f(&contracted);
            if fc < worst {
                simplex[dims] = (contracted, fc);
            } else {
                let best_point = simplex[0].0;
                for entry in simplex.iter_mut().skip(1) {
                    let p = combine(&best_point, &entry.0, 0.5);
                    *entry = (p, f(&p));
                }
            }
        }
    }
    simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
    simplex[0].0
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng as _;
    use rand_distr::Distribution as _;

    fn draw<D: rand_distr::Distribution<f64>>(d: D, n: usize) -> Vec<f64> {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
        (0..n).map(|_| d.sample(&mut rng)).collect()
    }

    #[test]
    fn integrates_the_window_kernel() {
        let law = Fitted {
            family: Family::Exponential,
            a: 3.0,
            b: 0.0,
        }
        .law()
        .unwrap();
        let total: f64 = (0..200)
            .map(|d| window_probability(&law, f64::from(d), 1.0))
            .sum();
        assert!((total - 1.0).abs() < 1e-6, "{total}");
        let integral = gauss_legendre(0.0, 2.0, |x| x * x);
        assert!((integral - 8.0 / 3.0).abs() < 1e-12, "{integral}");
    }

    #[test]
    fn recovers_a_lognormal_and_prefers_it() {
        let values = draw(rand_distr::LogNormal::new(2.0, 0.8).unwrap(), 4000);
        let sample = Sample {
            exact: values,
            ..Sample::default()
        };
        let r = fit(&sample, &FAMILIES).unwrap();
        assert_eq!(r.best.fitted.family, Family::LogNormal);
        assert!((r.best.fitted.a - 2.0).abs() < 0.05, "{:?}", r.best);
        assert!((r.best.fitted.b - 0.8).abs() < 0.03, "{:?}", r.best);
        assert!(r.ks_p > 0.01, "{}", r.ks_p);
    }

    #[test]
    fn recovers_a_weibull_from_whole_seconds() {
        // Intervals between timestamps truncated to whole seconds.
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(3);
        let weibull = rand_distr::Weibull::new(4.0, 1.5).unwrap();
        let uniform = rand_distr::Uniform::new(0.0, 1.0).unwrap();
        let rounded: Vec<f64> = (0..5000)
            .map(|_| {
                let start: f64 = uniform.sample(&mut rng) * 1000.0;
                let x: f64 = weibull.sample(&mut rng);
                (start + x).floor() - start.floor()
            })
            .collect();
        let sample = Sample {
            rounded,
            resolution: 1.0,
            ..Sample::default()
        };
        let r = fit(&sample, &FAMILIES).unwrap();
        assert!(r.interval_censored);
        assert_eq!(r.best.fitted.family, Family::Weibull, "{r:?}");
        assert!((r.best.fitted.a - 1.5).abs() < 0.08, "{r:?}");
        assert!((r.best.fitted.b - 4.0).abs() < 0.15, "{r:?}");
        assert!(r.ks_p > 0.01, "{r:?}");
    }

    #[test]
    fn right_censoring_corrects_the_mean() {
        // Exponential(mean 10) observed in a window: values past 15 are cut there.
        let values = draw(rand_distr::Exp::new(0.1).unwrap(), 5000);
        let (exact, right_censored): (Vec<f64>, Vec<f64>) =
            values.iter().partition(|&&v| v <= 15.0);
        let sample = Sample {
            exact,
            right_censored: right_censored.iter().map(|_| 15.0).collect(),
            ..Sample::default()
        };
        let r = fit(&sample, &[Family::Exponential]).unwrap();
        assert!((r.best.fitted.mean() - 10.0).abs() < 0.5, "{r:?}");
    }

    #[test]
    fn kolmogorov_p_values() {
        assert!((kolmogorov_p(1.36 / 1000f64.sqrt(), 1000.0) - 0.05).abs() < 0.005);
        assert!(kolmogorov_p(0.2, 1000.0) < 1e-10);
    }
}
