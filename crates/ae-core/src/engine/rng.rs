//! Seeded random streams. Every random draw in training comes from a stream derived from the run's
//! seed and a position (purpose, epoch, step), never from a stream carried across steps, so that a
//! run resumed at any step draws exactly what an uninterrupted run would have drawn.
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The generator used everywhere; ChaCha gives the same numbers on every platform.
pub type Rng = ChaCha8Rng;

/// What a stream is for; keeps the streams of different uses apart.
#[derive(Clone, Copy, Debug)]
#[repr(u64)]
pub enum Purpose {
    /// Parameter initialization.
    Init = 1,
    /// The train/validation split.
    Split = 2,
    /// The order of examples in an epoch.
    Shuffle = 3,
    /// Input corruption and sampling within a step.
    Step = 4,
    /// Anything a command needs outside training (picking examples to show, ...).
    Misc = 5,
    /// The order of a streamed data set's blocks in an epoch.
    Blocks = 6,
}

/// A stream for `purpose` at position (`a`, `b`) of the run seeded with `seed`.
pub fn stream(seed: u64, purpose: Purpose, a: u64, b: u64) -> Rng {
    let mut h = splitmix(seed ^ splitmix(purpose as u64));
    h = splitmix(h ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    h = splitmix(h ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F));
    Rng::seed_from_u64(h)
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng as _;

    #[test]
    fn streams_repeat_and_differ() {
        let a: u64 = stream(7, Purpose::Shuffle, 3, 0).random();
        let b: u64 = stream(7, Purpose::Shuffle, 3, 0).random();
        let c: u64 = stream(7, Purpose::Shuffle, 4, 0).random();
        let d: u64 = stream(7, Purpose::Step, 3, 0).random();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }
}
