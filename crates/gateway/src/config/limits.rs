//! The `[rate_limits]` section (token buckets on tool calls: global, per identity, per
//! identity and tool) and the `[audit]` section (what the per-call audit line holds).

use std::sync::Arc;

use mcpgw_transport::limits::{Rate, RateConfig, RateLimits};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawRateLimits {
    global: Option<RawRate>,
    per_identity: Option<RawRate>,
    per_tool: Option<RawRate>,
    max_keys: usize,
}

impl Default for RawRateLimits {
    fn default() -> Self {
        Self { global: None, per_identity: None, per_tool: None, max_keys: RateConfig::default().max_keys }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRate {
    /// Calls per second, sustained.
    rate: f64,
    /// Calls at once after a quiet spell; the rate rounded up when absent.
    burst: Option<u32>,
}

impl RawRate {
    fn build(&self, key: &str) -> Result<Rate, String> {
        if !self.rate.is_finite() || self.rate <= 0.0 {
            return Err(format!("rate_limits.{key}.rate must be a positive number of calls per second"));
        }
        let burst = match self.burst {
            Some(0) => return Err(format!("rate_limits.{key}.burst must be at least 1")),
            Some(b) => b,
            None => self.rate.ceil().min(f64::from(u32::MAX)) as u32,
        };
        Ok(Rate { per_second: self.rate, burst })
    }
}

impl RawRateLimits {
    /// The limits, or `None` when none is set.
    pub(super) fn build(self) -> Result<Option<Arc<RateLimits>>, String> {
        if self.max_keys == 0 {
            return Err("rate_limits.max_keys must be positive".into());
        }
        let rate = |raw: &Option<RawRate>, key| raw.as_ref().map(|r| r.build(key)).transpose();
        let config = RateConfig {
            global: rate(&self.global, "global")?,
            identity: rate(&self.per_identity, "per_identity")?,
            tool: rate(&self.per_tool, "per_tool")?,
            max_keys: self.max_keys,
        };
        let limits = RateLimits::new(config);
        Ok(limits.is_active().then(|| Arc::new(limits)))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawAudit {
    /// Log each tool call's arguments too.
    pub(super) arguments: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(text: &str) -> Result<Option<Arc<RateLimits>>, String> {
        toml::from_str::<RawRateLimits>(text).map_err(|e| e.to_string())?.build()
    }

    #[test]
    fn rates_are_positive_bursts_at_least_one_and_none_set_is_no_limits() {
        assert!(limits("").expect("valid").is_none(), "no limit set: nothing to check");
        assert!(limits("per_tool = { rate = 2.5 }").expect("valid").is_some(), "the burst defaults");
        for bad in [
            "global = { rate = 0 }",
            "global = { rate = -1, burst = 2 }",
            "per_identity = { rate = 1, burst = 0 }",
            "per_tool = { rate = nan }",
            "max_keys = 0\nglobal = { rate = 1 }",
            "per_tool = { rate = 1, brust = 2 }",
        ] {
            assert!(limits(bad).is_err(), "{bad}");
        }
    }
}
