//! What a trained model is used for and measured by: PCA (the linear baseline) and principal
//! angles, k-nearest neighbours, ranking metrics, anomaly scores, classifiers on an encoder, and
//! what drives each code unit. Uses training and below.
pub mod anomaly;
pub mod classifier;
pub mod compress;
pub mod few_labels;
pub mod generate;
pub mod impute;
pub mod inference;
pub mod inspect;
pub mod knn;
pub mod metrics;
pub mod pca;
pub mod probe;
pub mod ranking;
pub mod semi_supervised;
pub mod subspace;
