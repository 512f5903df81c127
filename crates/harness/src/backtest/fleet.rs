//! The simulated Deployment: pods ordered now are Ready `startup` later; scale-down removes
//! pods at once, not-yet-Ready ones first (as the ReplicaSet controller does).

use std::collections::VecDeque;

/// Pods of one scale-up that are not Ready yet.
#[derive(Debug, Clone, Copy)]
struct Starting {
    ready_at: i64,
    pods: u32,
}

/// Replicas over simulated time, in seconds from an arbitrary origin.
#[derive(Debug, Clone)]
pub(crate) struct Fleet {
    spec: u32,
    ready: u32,
    starting: VecDeque<Starting>,
    startup_secs: i64,
    clock: i64,
}

impl Fleet {
    /// `replicas` Ready pods at time `now`; new pods take `startup_secs` to become Ready.
    pub fn new(now: i64, replicas: u32, startup_secs: i64) -> Self {
        Self {
            spec: replicas,
            ready: replicas,
            starting: VecDeque::new(),
            startup_secs: startup_secs.max(0),
            clock: now,
        }
    }

    /// The replica target (`spec.replicas`).
    pub fn spec(&self) -> u32 {
        self.spec
    }

    /// Ready pods now.
    pub fn ready(&self) -> u32 {
        self.ready
    }

    /// Move the clock to `t` (not before now); returns the Ready pod-seconds over the interval.
    /// Pods whose startup ends at or before `t` are Ready at `t`.
    pub fn advance_to(&mut self, t: i64) -> f64 {
        let mut pod_secs = 0.0;
        while let Some(next) = self.starting.front().copied().filter(|s| s.ready_at <= t) {
            let at = next.ready_at.max(self.clock);
            pod_secs += f64::from(self.ready) * (at - self.clock) as f64;
            self.clock = at;
            self.ready += next.pods;
            self.starting.pop_front();
        }
        if t > self.clock {
            pod_secs += f64::from(self.ready) * (t - self.clock) as f64;
            self.clock = t;
        }
        pod_secs
    }

    /// Set the replica target now: more pods start (Ready after the startup time), fewer pods
    /// go at once, starting pods first (newest first), then Ready ones.
    pub fn scale_to(&mut self, target: u32) {
        if target > self.spec {
            let pods = target - self.spec;
            if self.startup_secs == 0 {
                self.ready += pods;
            } else {
                self.starting.push_back(Starting { ready_at: self.clock + self.startup_secs, pods });
            }
        } else {
            let mut remove = self.spec - target;
            while remove > 0 {
                let Some(newest) = self.starting.back_mut() else { break };
                let taken = newest.pods.min(remove);
                newest.pods -= taken;
                remove -= taken;
                if newest.pods == 0 {
                    self.starting.pop_back();
                }
            }
            self.ready -= remove.min(self.ready);
        }
        self.spec = target;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_pods_become_ready_after_the_startup() {
        let mut fleet = Fleet::new(0, 2, 180);
        fleet.scale_to(5);
        assert_eq!((fleet.spec(), fleet.ready()), (5, 2));
        // Minute 1 and 2: 2 ready. Minute 3: 5 ready from its start.
        assert_eq!(fleet.advance_to(60), 120.0);
        assert_eq!(fleet.advance_to(180), 240.0);
        assert_eq!(fleet.ready(), 5);
        assert_eq!(fleet.advance_to(240), 300.0);
    }

    #[test]
    fn pods_ready_mid_interval_count_for_their_share() {
        let mut fleet = Fleet::new(0, 1, 90);
        fleet.scale_to(3);
        assert_eq!(fleet.advance_to(60), 60.0);
        // Ready at 90 s: 1 pod for 30 s, then 3 pods for 30 s.
        assert_eq!(fleet.advance_to(120), 30.0 + 90.0);
    }

    #[test]
    fn scale_down_removes_starting_pods_first_and_acts_at_once() {
        let mut fleet = Fleet::new(0, 4, 180);
        fleet.scale_to(6);
        fleet.advance_to(60);
        fleet.scale_to(8);
        fleet.scale_to(3);
        assert_eq!((fleet.spec(), fleet.ready()), (3, 3), "4 starting pods go first, then one Ready pod");
        assert_eq!(fleet.advance_to(600), 3.0 * 540.0, "nothing is left starting");
    }

    #[test]
    fn zero_startup_is_ready_at_once() {
        let mut fleet = Fleet::new(0, 1, 0);
        fleet.scale_to(4);
        assert_eq!(fleet.ready(), 4);
        assert_eq!(fleet.advance_to(60), 240.0);
    }
}
