//! GPU time of queued work, measured with CUDA events around each run on the device's stream.
//!
//! Events time what the GPU does between two points of the stream, not what the host does, so
//! launch overhead is included only where the GPU waits for it. The warm-up runs first (cold
//! caches, JIT, clocks ramping up), then every run is bracketed by its own pair of events and
//! the host waits once, at the end, so runs queue back to back.

use cudarc::driver::sys::CUevent_flags;

use crate::device::Device;
use crate::error::CudaError;

/// Milliseconds per run, in run order.
#[derive(Clone, Debug, PartialEq)]
pub struct Timing {
    pub samples_ms: Vec<f32>,
}

impl Timing {
    /// The median run (the mean of the two middle runs for an even count). Never empty: a
    /// `Timing` comes from at least one run.
    pub fn median_ms(&self) -> f32 {
        median(&self.samples_ms)
    }

    pub fn min_ms(&self) -> f32 {
        self.samples_ms
            .iter()
            .copied()
            .fold(f32::INFINITY, f32::min)
    }

    pub fn max_ms(&self) -> f32 {
        self.samples_ms
            .iter()
            .copied()
            .fold(f32::NEG_INFINITY, f32::max)
    }

    pub fn mean_ms(&self) -> f32 {
        self.samples_ms.iter().sum::<f32>() / self.samples_ms.len() as f32
    }
}

/// The median of `samples`; NaN for an empty slice.
pub fn median(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return f32::NAN;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f32::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

impl Device {
    /// Runs `run(i)` `warmup` times untimed, then `iters` times each between two events, and
    /// returns the GPU time of each timed run. `run` must queue its work on this device (a
    /// [`crate::Function::launch`], a copy); `i` counts the timed runs from 0, so a benchmark
    /// can rotate through several input sets to defeat the L2 cache.
    pub fn time<F>(&self, warmup: usize, iters: usize, mut run: F) -> Result<Timing, CudaError>
    where
        F: FnMut(usize) -> Result<(), CudaError>,
    {
        if iters == 0 {
            return Err(CudaError::InvalidTiming {
                reason: "at least one timed run is needed".to_owned(),
            });
        }
        for i in 0..warmup {
            run(i)?;
        }
        let ctx = self.ctx();
        let new_event = || {
            ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
                .map_err(|e| CudaError::driver("creating a timing event", e))
        };
        let mut pairs = Vec::with_capacity(iters);
        for i in 0..iters {
            let (start, end) = (new_event()?, new_event()?);
            start
                .record(self.stream())
                .map_err(|e| CudaError::driver("recording a timing event", e))?;
            run(i)?;
            end.record(self.stream())
                .map_err(|e| CudaError::driver("recording a timing event", e))?;
            pairs.push((start, end));
        }
        self.synchronize()?;
        let samples_ms = pairs
            .iter()
            .map(|(start, end)| {
                start
                    .elapsed_ms(end)
                    .map_err(|e| CudaError::driver("reading the time between two events", e))
            })
            .collect::<Result<Vec<f32>, CudaError>>()?;
        Ok(Timing { samples_ms })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[7.5]), 7.5);
        assert!(median(&[]).is_nan());
        // An outlier moves the mean but not the median.
        let timing = Timing {
            samples_ms: vec![1.0, 1.0, 100.0],
        };
        assert_eq!(timing.median_ms(), 1.0);
        assert_eq!(timing.mean_ms(), 34.0);
        assert_eq!(timing.min_ms(), 1.0);
        assert_eq!(timing.max_ms(), 100.0);
    }
}
