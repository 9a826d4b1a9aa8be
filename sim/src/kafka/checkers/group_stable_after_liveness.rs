//! Group stable after liveness: once faults are healed and the workload is quiet, within the
//! liveness bound the group is Stable on its coordinator, its members are exactly the live
//! members (crashed and departed ones are gone), each holds its assignment of the current
//! generation, and every partition of the topic is assigned to one of them. A liveness
//! property, judged on the final state (the simulator waits for it until the bound). Catches
//! members that never expire, rebalances that never complete, and coordinators that never
//! come back.

use super::HistoryChecker;
use crate::checkers::CheckerKind;
use crate::kafka::history::{FinalState, History};

#[derive(Debug, Default)]
pub struct GroupStableAfterLiveness;

impl HistoryChecker for GroupStableAfterLiveness {
    fn kind(&self) -> CheckerKind {
        CheckerKind::GroupStableAfterLiveness
    }

    fn finish(&mut self, _h: &History, f: &FinalState) -> Result<(), String> {
        let Some(g) = &f.group else {
            return Ok(());
        };
        match g.unsettled() {
            None => Ok(()),
            Some(why) => Err(format!(
                "group {} did not settle after the liveness phase: {why}",
                g.group
            )),
        }
    }
}
