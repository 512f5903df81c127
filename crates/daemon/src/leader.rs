//! Leader election through a `coordination.k8s.io/v1` Lease, so two replicas never both act.
//!
//! A small implementation on the daemon's [`Clock`](prescale_core::Clock) rather than a
//! library: every wait (renew interval, lease duration) is clock time, so the harness' 60x
//! clock compresses elections like everything else, and tests on one shared clock are exact.
//!
//! The algorithm is client-go's: the holder renews `spec.renewTime` every renew interval; a
//! follower remembers when it last SAW the Lease change (its own clock, never the holder's
//! timestamps, so skewed clocks cannot make it take over early) and takes the Lease over only
//! when it has not changed for a whole lease duration. Writes carry the `resourceVersion` read,
//! so of two replicas racing for a Lease exactly one wins (the other gets 409).
//! A holder counts itself leader only until two thirds of the lease duration after its last
//! successful renewal: it stops acting before anyone else may start.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use prescale_core::SharedClock;

use crate::DaemonError;
use crate::kube::KubeClient;

/// Who may act now.
#[derive(Debug)]
pub struct Leadership {
    /// `None`: election disabled, always leader.
    valid_until: Option<Mutex<Option<DateTime<Utc>>>>,
}

impl Leadership {
    /// Leadership without election: this replica always acts.
    pub fn always() -> Self {
        Self { valid_until: None }
    }

    /// Leadership decided by an elector; not leader until the first successful claim.
    pub fn elected() -> Self {
        Self { valid_until: Some(Mutex::new(None)) }
    }

    /// Whether this replica may act at `now`.
    pub fn is_leader(&self, now: DateTime<Utc>) -> bool {
        match &self.valid_until {
            None => true,
            Some(m) => m.lock().unwrap_or_else(|p| p.into_inner()).is_some_and(|until| now < until),
        }
    }

    fn set(&self, until: Option<DateTime<Utc>>) {
        if let Some(m) = &self.valid_until {
            *m.lock().unwrap_or_else(|p| p.into_inner()) = until;
        }
    }
}

/// Settings of one elector.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This replica's identity (`spec.holderIdentity`).
    pub identity: String,
    /// How long a claim lasts without renewal.
    pub lease_duration: Duration,
    /// How often to renew or retry.
    pub renew_interval: Duration,
}

/// What this replica last saw of another holder's Lease.
#[derive(Debug, Clone, PartialEq)]
struct Observed {
    /// Holder, renew time and resource version: any change means the holder is alive.
    record: (Option<String>, Option<String>, Option<String>),
    /// When this replica saw the record change, on its own clock.
    at: DateTime<Utc>,
}

/// Claims and renews one Lease.
pub struct LeaderElector {
    api: Api<Lease>,
    settings: LeaseSettings,
    clock: SharedClock,
    observed: Mutex<Option<Observed>>,
}

impl std::fmt::Debug for LeaderElector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderElector").field("settings", &self.settings).finish_non_exhaustive()
    }
}

fn lease_error(settings: &LeaseSettings, message: impl std::fmt::Display) -> DaemonError {
    DaemonError::Stage {
        stage: "leader election",
        message: format!("Lease {}/{}: {message}", settings.namespace, settings.name),
    }
}

fn micro_time(t: DateTime<Utc>) -> MicroTime {
    MicroTime(
        k8s_openapi::jiff::Timestamp::from_microsecond(t.timestamp_micros())
            .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    )
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

impl LeaderElector {
    /// An elector for the Lease in `settings`.
    pub fn new(client: &KubeClient, settings: LeaseSettings, clock: SharedClock) -> Self {
        Self {
            api: Api::namespaced(client.inner().clone(), &settings.namespace),
            settings,
            clock,
            observed: Mutex::new(None),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &LeaseSettings {
        &self.settings
    }

    fn spec_for_me(&self, now: DateTime<Utc>, transitions: i32, acquired: Option<MicroTime>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.settings.identity.clone()),
            lease_duration_seconds: Some(i32::try_from(self.settings.lease_duration.num_seconds()).unwrap_or(15)),
            acquire_time: Some(acquired.unwrap_or_else(|| micro_time(now))),
            renew_time: Some(micro_time(now)),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }

    /// Claim or renew the Lease once; `Ok(true)` when this replica holds it afterwards.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, DaemonError> {
        let now = self.clock.now();
        let current = self.api.get_opt(&self.settings.name).await.map_err(|e| lease_error(&self.settings, e))?;
        let Some(mut lease) = current else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.settings.name.clone()),
                    namespace: Some(self.settings.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(self.spec_for_me(now, 0, None)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(e) if is_conflict(&e) => Ok(false),
                Err(e) => Err(lease_error(&self.settings, e)),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let mine = holder.as_deref() == Some(self.settings.identity.as_str());
        let transitions = spec.lease_transitions.unwrap_or(0);
        if !mine && holder.is_some() {
            let record = (
                holder.clone(),
                spec.renew_time.as_ref().map(|t| t.0.to_string()),
                lease.metadata.resource_version.clone(),
            );
            let mut observed = self.observed.lock().unwrap_or_else(|p| p.into_inner());
            let seen_at = match observed.as_ref() {
                Some(o) if o.record == record => o.at,
                _ => {
                    *observed = Some(Observed { record, at: now });
                    now
                }
            };
            let duration = spec
                .lease_duration_seconds
                .map(|s| Duration::seconds(i64::from(s.max(1))))
                .unwrap_or(self.settings.lease_duration);
            if now < seen_at + duration {
                return Ok(false);
            }
            tracing::info!(previous = ?holder, "the Lease was not renewed for a whole lease duration; taking it over");
        }
        let (transitions, acquired) =
            if mine { (transitions, spec.acquire_time.clone()) } else { (transitions.saturating_add(1), None) };
        lease.spec = Some(self.spec_for_me(now, transitions, acquired));
        match self.api.replace(&self.settings.name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(e) if is_conflict(&e) => Ok(false),
            Err(e) => Err(lease_error(&self.settings, e)),
        }
    }

    /// Give the Lease up if this replica holds it, so a follower takes over at once.
    pub async fn release(&self) -> Result<(), DaemonError> {
        let Some(mut lease) =
            self.api.get_opt(&self.settings.name).await.map_err(|e| lease_error(&self.settings, e))?
        else {
            return Ok(());
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.settings.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = Some(micro_time(self.clock.now()));
        lease.spec = Some(spec);
        match self.api.replace(&self.settings.name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(()),
            Err(e) if is_conflict(&e) => Ok(()),
            Err(e) => Err(lease_error(&self.settings, e)),
        }
    }

    /// Claim and renew until `stop` flips to true, keeping `leadership` up to date; then
    /// stop acting and release the Lease. `first_round` hears when the first claim is decided.
    pub async fn run(
        &self,
        leadership: &Leadership,
        mut stop: tokio::sync::watch::Receiver<bool>,
        mut first_round: Option<tokio::sync::oneshot::Sender<()>>,
    ) {
        let renew_deadline = self.settings.lease_duration * 2 / 3;
        let mut was_leader = false;
        loop {
            let started = self.clock.now();
            match self.try_acquire_or_renew().await {
                Ok(true) => {
                    leadership.set(Some(started + renew_deadline));
                    if !was_leader {
                        tracing::info!(identity = %self.settings.identity, lease = %self.settings.name, "became the leader");
                    }
                    was_leader = true;
                }
                Ok(false) => {
                    leadership.set(None);
                    if was_leader {
                        tracing::warn!(identity = %self.settings.identity, "lost the Lease; no longer acting");
                    }
                    was_leader = false;
                }
                // A failed renewal keeps the leadership until its deadline passes.
                Err(e) => tracing::warn!(error = %e, "leader election request failed"),
            }
            if let Some(tx) = first_round.take() {
                let _ = tx.send(());
            }
            tokio::select! {
                _ = self.clock.sleep(self.settings.renew_interval) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        leadership.set(None);
        if was_leader {
            match self.release().await {
                Ok(()) => tracing::info!("released the Lease"),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot release the Lease; a follower takes over after it expires")
                }
            }
        }
    }
}

/// The default identity: the host name and a random suffix, so two processes never share one.
pub fn default_identity() -> String {
    use std::hash::{BuildHasher, Hasher};
    let host = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "prescaled".into());
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    format!("{host}-{:08x}", hasher.finish() as u32)
}

/// The default Lease namespace: the pod's own namespace in a cluster, else `default`.
pub fn default_namespace() -> String {
    std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".into())
}
