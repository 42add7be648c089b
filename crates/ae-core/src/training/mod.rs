//! Training: the one loop every flavor shares ([`fit`]), the settings of a run as one type,
//! and greedy layer-wise pretraining (which trains each stage through that same loop). Uses
//! objectives, models and the engine.
pub mod fit;
pub mod pretrain;
pub mod settings;
