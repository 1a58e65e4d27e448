//! The launch summary as step-120 and step-220 report it.

use common::Report;
use common::deployment_path::DeploymentPath;
use fleet::launch::{Launched, Market};
use fleet::launcher::LaunchSummary;

#[test]
fn finish_report_names_the_path_and_lists_every_live_worker() {
    let mut summary = LaunchSummary::default();
    let mut report = Report::new("step-220-launch-docker-worker");
    summary.finish_report(DeploymentPath::Docker, &mut report);
    assert_eq!(report.summary, "0 Path B worker(s) already live; nothing launched");

    summary.launched.push(Launched {
        instance_id: "i-1".into(),
        instance_type: "g4dn.xlarge".into(),
        subnet_id: "subnet-1".into(),
        zone: "us-east-1a".into(),
        market: Market::Spot,
        name: "worker-1".into(),
    });
    summary.launch_seconds = 41.6;
    summary.finish_report(DeploymentPath::Traditional, &mut report);
    assert_eq!(report.summary, "launched 1 Path A worker(s) in 42 s");
    assert_eq!(report.data["instance_ids"], serde_json::json!(["i-1"]));
    assert_eq!(report.data["launched"][0]["market"], "spot");
}
