//! How well a score separates two groups: the area under the ROC curve and average precision, as
//! scikit-learn defines them (`roc_auc_score`, `average_precision_score`), and thresholds taken as
//! quantiles of scores. Used by anomaly detection, where a high score means "anomalous".

/// The area under the ROC curve of `scores` for `positives` (true = positive): the probability that
/// a random positive scores above a random negative, ties counting one half. `None` unless both
/// groups are present.
pub fn auroc(scores: &[f32], positives: &[bool]) -> Option<f64> {
    let n_pos = positives.iter().filter(|&&p| p).count();
    let n_neg = positives.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    // Mann–Whitney: the sum of the positives' ranks (ties get their average rank).
    let order = sorted_by_score(scores, false);
    let mut rank_sum = 0.0f64;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        let pos_here = order[i..=j].iter().filter(|&&k| positives[k]).count();
        rank_sum += avg_rank * pos_here as f64;
        i = j + 1;
    }
    let u = rank_sum - (n_pos * (n_pos + 1)) as f64 / 2.0;
    Some(u / (n_pos as f64 * n_neg as f64))
}

/// Average precision: Σₙ (Rₙ − Rₙ₋₁)·Pₙ over the distinct thresholds from the highest score down,
/// with precision Pₙ and recall Rₙ of flagging every score ≥ threshold n. `None` without positives.
pub fn average_precision(scores: &[f32], positives: &[bool]) -> Option<f64> {
    let n_pos = positives.iter().filter(|&&p| p).count();
    if n_pos == 0 {
        return None;
    }
    let order = sorted_by_score(scores, true);
    let (mut tp, mut flagged, mut ap, mut last_recall) = (0usize, 0usize, 0.0f64, 0.0f64);
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        tp += order[i..=j].iter().filter(|&&k| positives[k]).count();
        flagged += j - i + 1;
        let recall = tp as f64 / n_pos as f64;
        ap += (recall - last_recall) * tp as f64 / flagged as f64;
        last_recall = recall;
        i = j + 1;
    }
    Some(ap)
}

/// The value below which a share `q` (in [0, 1]) of `scores` falls, interpolated linearly between
/// order statistics (NumPy's default `quantile`). `None` for no scores.
pub fn quantile(scores: &[f32], q: f64) -> Option<f32> {
    if scores.is_empty() {
        return None;
    }
    let mut s = scores.to_vec();
    s.sort_by(f32::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (s.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    let t = (pos - lo as f64) as f32;
    Some(s[lo] + (s[hi] - s[lo]) * t)
}

/// Indices sorted by score (NaN last either way).
fn sorted_by_score(scores: &[f32], descending: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (scores[a], scores[b]);
        match (x.is_nan(), y.is_nan()) {
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) => std::cmp::Ordering::Greater,
            (false, true) => std::cmp::Ordering::Less,
            _ if descending => y.total_cmp(&x),
            _ => x.total_cmp(&y),
        }
    });
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_reversed_and_tied_scores() {
        let pos = [false, false, true, true];
        assert_eq!(auroc(&[0.1, 0.2, 0.8, 0.9], &pos), Some(1.0));
        assert_eq!(auroc(&[0.9, 0.8, 0.2, 0.1], &pos), Some(0.0));
        assert_eq!(auroc(&[0.5; 4], &pos), Some(0.5));
        assert_eq!(average_precision(&[0.1, 0.2, 0.8, 0.9], &pos), Some(1.0));
        assert_eq!(average_precision(&[0.5; 4], &pos), Some(0.5));
        assert_eq!(auroc(&[0.1, 0.2], &[true, true]), None);
        assert_eq!(average_precision(&[0.1], &[false]), None);
    }

    #[test]
    fn quantiles_interpolate() {
        let s = [4.0, 1.0, 3.0, 2.0, 5.0];
        assert_eq!(quantile(&s, 0.5), Some(3.0));
        assert_eq!(quantile(&s, 0.0), Some(1.0));
        assert_eq!(quantile(&s, 1.0), Some(5.0));
        assert_eq!(quantile(&s, 0.875), Some(4.5));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
