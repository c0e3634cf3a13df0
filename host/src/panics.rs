//! Panics at task boundaries: a panic in a discovery or mapping task is a bug, but it must end
//! as a failed scope or failed items (kept, and reported why), never as work that silently
//! did not happen and so looks like deleted resources.
//!
//! Owns: [`text`] (what a caught panic said) and [`inject`], the failure points the tests use
//! to make a task panic. Must not touch: what a failure means for a sync (the caller turns it
//! into a scope status).
//!
//! Injection is compiled only into debug builds (what `cargo test` runs); a release build
//! ignores `BERTH_FAILPOINTS` entirely. Its value is `point=key` pairs separated by `;`
//! (`discover.account=222222222222;discover.scope=111111111111/us-east-1/AWS::EC2::Instance`),
//! where a key of `*` matches every key of that point.

/// The message of a caught panic payload.
pub fn text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// Panics when `BERTH_FAILPOINTS` names `point` with `key` (debug builds only).
pub fn inject(point: &str, key: &str) {
    #[cfg(debug_assertions)]
    {
        use std::sync::OnceLock;
        static POINTS: OnceLock<Vec<(String, String)>> = OnceLock::new();
        let points = POINTS.get_or_init(|| {
            std::env::var("BERTH_FAILPOINTS")
                .unwrap_or_default()
                .split(';')
                .filter_map(|p| p.split_once('='))
                .map(|(p, k)| (p.trim().to_string(), k.trim().to_string()))
                .collect()
        });
        if points
            .iter()
            .any(|(p, k)| p == point && (k == key || k == "*"))
        {
            panic!("failpoint {point} injected for {key}");
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = (point, key);
}

#[cfg(test)]
mod tests {
    #[test]
    fn panic_payloads_become_text() {
        let p = std::panic::catch_unwind(|| panic!("at {}", 3)).unwrap_err();
        assert_eq!(super::text(&*p), "at 3");
        let p = std::panic::catch_unwind(|| panic!("static")).unwrap_err();
        assert_eq!(super::text(&*p), "static");
    }
}
