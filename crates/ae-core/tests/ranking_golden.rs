//! AUROC, average precision and k-NN predictions against scikit-learn
//! (golden/ranking_golden.py → golden/ranking_golden.json).
use ae_core::analysis::knn::knn_predict;
use ae_core::analysis::ranking::{auroc, average_precision};
use ae_core::Tensor;
use serde_json::Value;

fn golden() -> Value {
    serde_json::from_str(include_str!("golden/ranking_golden.json")).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn ints(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn auroc_and_average_precision_match_scikit_learn() {
    for case in golden()["ranking"].as_array().unwrap() {
        let scores = floats(&case["scores"]);
        let pos: Vec<bool> = ints(&case["labels"]).iter().map(|&l| l == 1).collect();
        let (a, ap) = (
            auroc(&scores, &pos).unwrap(),
            average_precision(&scores, &pos).unwrap(),
        );
        let (want_a, want_ap) = (
            case["auroc"].as_f64().unwrap(),
            case["average_precision"].as_f64().unwrap(),
        );
        assert!((a - want_a).abs() < 1e-9, "auroc {a} vs {want_a}");
        assert!((ap - want_ap).abs() < 1e-9, "ap {ap} vs {want_ap}");
    }
}

#[test]
fn knn_predictions_match_scikit_learn() {
    for case in golden()["knn"].as_array().unwrap() {
        let d = case["dim"].as_u64().unwrap() as usize;
        let train = floats(&case["train"]);
        let test = floats(&case["test"]);
        let train = Tensor::from_vec(&[train.len() / d, d], train);
        let test = Tensor::from_vec(&[test.len() / d, d], test);
        let k = case["k"].as_u64().unwrap() as usize;
        let got = knn_predict(&train, &ints(&case["train_labels"]), &test, k);
        assert_eq!(got, ints(&case["predicted"]), "k = {k}");
    }
}
