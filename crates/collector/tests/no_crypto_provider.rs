//! Without a process-wide rustls provider, building a source is an error, not a panic.
//! This file holds one test so no other test in its process installs a provider first.

use prescale_collector::{CollectorError, PrometheusConfig, PrometheusSource};

#[test]
fn building_without_a_provider_is_a_config_error() {
    let err = PrometheusSource::new(PrometheusConfig::new("http://127.0.0.1:9090")).unwrap_err();
    assert!(matches!(&err, CollectorError::InvalidConfig(m) if m.contains("install_default")), "{err}");
}
