//! Record values: random uppercase letters, as kafka-producer-perf-test sends, so that
//! compression sees text-like data rather than incompressible noise or all zeroes.

use bytes::Bytes;
use rand::Rng;

/// Hands out record values as zero-copy slices of one shared random pool.
#[derive(Debug, Clone)]
pub struct Payloads {
    pool: Bytes,
    size: usize,
    next: usize,
}

impl Payloads {
    pub fn new(size: usize, seed_offset: usize) -> Self {
        // A pool larger than one value so consecutive values differ.
        let len = size + 64 * 1024;
        let mut rng = rand::rng();
        let pool: Vec<u8> = (0..len).map(|_| rng.random_range(b'A'..=b'Z')).collect();
        Self {
            pool: Bytes::from(pool),
            size,
            next: seed_offset,
        }
    }

    pub fn next_value(&mut self) -> Bytes {
        let span = self.pool.len() - self.size + 1;
        let start = self.next % span;
        // Step by a prime so the starts cycle through the whole pool.
        self.next = self.next.wrapping_add(7919);
        self.pool.slice(start..start + self.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_have_the_size_and_vary() {
        let mut p = Payloads::new(1024, 0);
        let a = p.next_value();
        let b = p.next_value();
        assert_eq!(a.len(), 1024);
        assert_eq!(b.len(), 1024);
        assert_ne!(a, b);
        assert!(a.iter().all(u8::is_ascii_uppercase));
        for _ in 0..10_000 {
            assert_eq!(p.next_value().len(), 1024);
        }
    }
}
