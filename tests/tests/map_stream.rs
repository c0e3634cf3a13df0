//! The map stage as a sync drives it: items arrive as discovery finds them, a few kinds at a
//! time. A partial batch must not wait for its kind to fill it while other kinds keep the
//! input busy: once it is `linger` old it is mapped as soon as no input is waiting.

use std::sync::Arc;
use std::time::Duration;

use berth::limits::Limits;
use berth::mapping::MappingFile;
use berth::pipeline::map::{MapOptions, Mapped, RawInput, run_stream};
use berth::plugin::Tenant;
use berth::plugin::lookup::Offline;
use berth::scope::Place;
use berth_tests::{plugin, plugin_dir, registry, repo};
use tokio::sync::mpsc;

fn item(kind: &str, id: usize) -> RawInput {
    RawInput::Item {
        kind: kind.to_string(),
        place: Some(Place {
            account_id: "123456789012".into(),
            region: "us-east-1".into(),
        }),
        line: format!(
            r#"{{"Identifier":"{kind}-{id}","Properties":{{"Arn":"arn:aws:x:{id}","FunctionName":"f{id}","BucketName":"b{id}"}},"__Kind":"{kind}","__Region":"us-east-1","__AccountId":"123456789012"}}"#
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_kind_is_mapped_while_another_keeps_the_input_busy() {
    let dir = plugin_dir(&[plugin("generic")]);
    let reg = registry(dir.path()).await;
    let mapping = Arc::new(MappingFile::from_path(&repo().join("mappings/default.yaml")).unwrap());
    let tenant = Tenant::new("stream", Limits::default(), Arc::new(Offline));
    let (in_tx, in_rx) = mpsc::channel::<Vec<RawInput>>(4);
    let (out_tx, mut out_rx) = mpsc::channel::<Mapped>(64);
    let opts = MapOptions {
        jobs: 2,
        batch_items: 50,
        linger: Duration::from_millis(50),
    };
    let run = tokio::spawn(run_stream(reg, mapping, tenant, in_rx, out_tx, opts));

    // One Lambda function, then S3 buckets every 5 ms for 2 s: the input is never idle for
    // the linger, and the Lambda batch never fills.
    in_tx
        .send(vec![item("AWS::Lambda::Function", 0)])
        .await
        .unwrap();
    let mut lambda_seen_while_busy = false;
    let mut buckets = 0;
    for i in 0..400 {
        in_tx.send(vec![item("AWS::S3::Bucket", i)]).await.unwrap();
        while let Ok(m) = out_rx.try_recv() {
            if m.kind == "AWS::Lambda::Function" {
                assert_eq!(m.entities.len(), 1, "{m:?}");
                lambda_seen_while_busy = true;
            } else {
                buckets += m.entities.len();
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(in_tx);
    while let Some(m) = out_rx.recv().await {
        if m.kind == "AWS::S3::Bucket" {
            buckets += m.entities.len();
        }
    }
    let summary = run.await.unwrap();
    assert_eq!(summary.error_count(), 0);
    assert_eq!(buckets, 400, "every bucket mapped once");
    assert!(
        lambda_seen_while_busy,
        "the lone Lambda item waited for the end of the input"
    );
}
