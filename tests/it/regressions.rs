//! Every seed that ever failed, kept as a named test with its postmortem.

use crate::support::{explain, run_scenario};

/// Postmortem (found by the first `sluice-sim sweep --seeds 0..50`): a follower restarted while
/// the leader was streaming to it; the appends sent while it was down were lost, so the leader's
/// in-flight window stayed full. The stall detector reset a follower to probing only if it had
/// been silent for a heartbeat tick, but the follower answered every heartbeat, so the window
/// never drained and the follower stayed 33 entries behind for ever (liveness failure).
/// Fix: a follower counts as stalled when its match index has not advanced for two ticks while
/// appends are in flight; heartbeat responses no longer count as progress.
#[test]
fn rolling_restarts_seed_48_follower_window_never_stalls() {
    let r = run_scenario("rolling-restarts", 48);
    assert!(
        r.verdict.is_pass(),
        "{}",
        explain("rolling-restarts", 48, &r)
    );
}
