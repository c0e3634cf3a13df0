//! What an operator reads after a resync: the summary table for the terminal and a
//! self-contained HTML report file (counts per kind and scope, failures with their causes,
//! misconfigured fields with their JQ expressions, timings as a chart).
//!
//! Owns the rendering only. Must not touch: the numbers' meaning (each stage's report has it)
//! or any I/O besides the string it returns.

use std::fmt::Write as _;

use crate::aws::ScopeStatus;
use crate::mapping::MappingFile;
use crate::resync::ResyncReport;

/// The end-of-resync table: one line per resource entry, then totals and what did not go well.
pub fn summary_table(r: &ResyncReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<34} {:>9} {:>9} {:>8} {:>7} {:>8} {:>9} {:>7} {:>7}",
        "kind",
        "extracted",
        "mapped",
        "filtered",
        "failed",
        "loaded",
        "unchanged",
        "deleted",
        "errors"
    );
    for k in &r.push.kinds {
        let _ = writeln!(
            s,
            "{:<34} {:>9} {:>9} {:>8} {:>7} {:>8} {:>9} {:>7} {:>7}",
            k.identifier(),
            k.raw_extracted,
            k.transformed,
            k.filtered_out,
            k.transform_failed,
            k.loaded,
            k.skipped,
            k.deleted,
            k.load_failed
        );
    }
    let (mut complete, mut denied, mut failed) = (0, 0, 0);
    for sc in &r.discovery.scopes {
        match sc.status {
            ScopeStatus::Complete => complete += 1,
            ScopeStatus::Denied(_) => denied += 1,
            ScopeStatus::Failed(_) => failed += 1,
        }
    }
    let calls = r.discovery.calls();
    let _ = writeln!(
        s,
        "\nscopes: {complete} complete, {denied} denied, {failed} failed; AWS calls {} \
         (retries {}, throttles {}); {:.1}s",
        calls.calls,
        calls.retries,
        calls.throttles,
        r.elapsed.as_secs_f64()
    );
    let _ = writeln!(
        s,
        "Port: loaded {} (failed {}), deleted {} (failed {})",
        r.push.loaded, r.push.load_failed, r.push.deleted, r.push.delete_failed
    );
    for a in &r.discovery.accounts {
        if let Some(e) = &a.error {
            let _ = writeln!(s, "  account {} not read: {e}", a.account_id);
        }
    }
    // Every scope that did not complete, one line each (`status account/region/kind: why`):
    // nothing it could have produced was deleted.
    let mut listed = std::collections::HashSet::new();
    for sc in &r.discovery.scopes {
        match &sc.status {
            ScopeStatus::Denied(why) | ScopeStatus::Failed(why) => {
                let text = format!("{}/{}/{}", sc.key.account_id, sc.key.region, sc.key.kind);
                let _ = writeln!(s, "  {} {text}: {why}", sc.status.label());
                listed.insert(text);
            }
            ScopeStatus::Complete => {}
        }
    }
    for (k, _) in &r.push.incomplete_scopes {
        let text = k.to_text();
        if !listed.contains(&text) {
            let _ = writeln!(
                s,
                "  failed {text}: some of its entities failed to map or load"
            );
        }
    }
    for (bp, why) in &r.push.blocked_blueprints {
        let _ = writeln!(
            s,
            "  failed mapping: {why}; nothing of blueprint {bp} is deleted"
        );
    }
    if r.push.duplicates > 0 {
        let _ = writeln!(
            s,
            "  {} entities were produced more than once (an identifier shared by several \
             accounts or regions); each was written once",
            r.push.duplicates
        );
    }
    if let Some(why) = &r.push.refused {
        let _ = writeln!(s, "reconciliation: {why}");
    }
    for (why, n) in &r.push.kept {
        let _ = writeln!(s, "  kept {n} stale: {why}");
    }
    for (m, n) in r.map.errors.iter().chain(r.push.errors.iter()).take(20) {
        let _ = writeln!(s, "  ({n}x) {m}");
    }
    s
}

fn esc(text: &str) -> String {
    let mut o = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// The HTML report: one file, no scripts, no external assets.
pub fn html(r: &ResyncReport, mapping: &MappingFile, title: &str) -> String {
    let mut h = String::new();
    let status = if r.is_complete() {
        "complete"
    } else {
        "partial"
    };
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title><style>\
         body{{font:14px system-ui,sans-serif;margin:2em;color:#222}}\
         table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}\
         td:first-child,th:first-child{{text-align:left}}.bad{{color:#b00}}.ok{{color:#070}}\
         .bar{{background:#4a7;height:12px;display:inline-block}}code{{background:#f3f3f3;padding:0 3px}}\
         </style></head><body><h1>{t}</h1><p>Sync <code>{id}</code>: <b class=\"{cls}\">{status}</b> \
         in {secs:.1}s{dry}.</p>",
        t = esc(title),
        id = esc(&r.push.sync_id),
        cls = if status == "complete" { "ok" } else { "bad" },
        secs = r.elapsed.as_secs_f64(),
        dry = if r.push.dry_run {
            " (dry run: nothing written)"
        } else {
            ""
        },
    );
    h.push_str(
        "<h2>Per kind</h2><table><tr><th>kind</th><th>extracted</th><th>mapped</th>\
         <th>filtered</th><th>map failed</th><th>loaded</th><th>unchanged</th>\
         <th>load failed</th><th>deleted</th></tr>",
    );
    for k in &r.push.kinds {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td></tr>",
            esc(&k.identifier()),
            k.raw_extracted,
            k.transformed,
            k.filtered_out,
            k.transform_failed,
            k.loaded,
            k.skipped,
            k.load_failed,
            k.deleted
        );
    }
    h.push_str("</table>");

    h.push_str(
        "<h2>Scopes</h2><table><tr><th>account</th><th>region</th><th>kind</th><th>status</th>\
         <th>items</th><th>calls</th><th>retries</th><th>throttles</th><th>seconds</th>\
         <th>cause</th></tr>",
    );
    for sc in &r.discovery.scopes {
        let (cls, cause) = match &sc.status {
            ScopeStatus::Complete => ("ok", String::new()),
            ScopeStatus::Denied(w) | ScopeStatus::Failed(w) => ("bad", w.clone()),
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{cls}\">{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{}</td></tr>",
            esc(&sc.key.account_id),
            esc(&sc.key.region),
            esc(&sc.key.kind),
            sc.status.label(),
            sc.items,
            sc.calls.calls,
            sc.calls.retries,
            sc.calls.throttles,
            sc.elapsed.as_secs_f64(),
            esc(&cause)
        );
    }
    h.push_str("</table>");
    for a in &r.discovery.accounts {
        if let Some(e) = &a.error {
            let _ = write!(
                h,
                "<p class=\"bad\">Account {} was not read: {}</p>",
                esc(&a.account_id),
                esc(e)
            );
        }
    }

    h.push_str("<h2>Reconciliation</h2>");
    let plan = r.push.plan.total();
    let _ = write!(
        h,
        "<p>{} created, {} updated, {} unchanged (no call), {} deleted.</p>",
        plan.create, plan.update, plan.unchanged, r.push.deleted
    );
    if let Some(why) = &r.push.refused {
        let _ = write!(h, "<p class=\"bad\">{}</p>", esc(why));
    }
    if !r.push.kept.is_empty() {
        h.push_str("<ul>");
        for (why, n) in &r.push.kept {
            let _ = write!(h, "<li>{n} stale entities kept: {}</li>", esc(why));
        }
        h.push_str("</ul>");
    }

    if !r.map.misconfigured.is_empty() {
        h.push_str(
            "<h2>Misconfigured fields</h2><p>These fields were null in the entities (Ocean's \
             behaviour); the expression is the mapping's.</p><table><tr><th>resource</th>\
             <th>field</th><th>expression</th><th>entities</th><th>why</th></tr>",
        );
        for ((idx, field, expr), m) in &r.map.misconfigured {
            let kind = mapping.resources.get(*idx).map_or("?", |e| e.kind.as_str());
            let _ = write!(
                h,
                "<tr><td>resources[{idx}] {}</td><td>{}</td><td><code>{}</code></td><td>{}</td>\
                 <td>{}</td></tr>",
                esc(kind),
                esc(field),
                esc(expr),
                m.count,
                esc(&m.message)
            );
        }
        h.push_str("</table>");
    }

    let errors: Vec<_> = r.map.errors.iter().chain(r.push.errors.iter()).collect();
    if !errors.is_empty() {
        h.push_str("<h2>Failures</h2><table><tr><th>cause</th><th>count</th></tr>");
        for (m, n) in errors.iter().take(200) {
            let _ = write!(h, "<tr><td>{}</td><td>{n}</td></tr>", esc(m));
        }
        h.push_str("</table>");
    }

    // Timings: the slowest scopes as bars, scaled to the slowest.
    let mut slow: Vec<_> = r.discovery.scopes.iter().collect();
    slow.sort_by_key(|s| std::cmp::Reverse(s.elapsed));
    let max = slow
        .first()
        .map_or(0.0, |s| s.elapsed.as_secs_f64())
        .max(1e-9);
    h.push_str("<h2>Timings</h2><table><tr><th>scope</th><th>seconds</th><th></th></tr>");
    for s in slow.iter().take(30) {
        let secs = s.elapsed.as_secs_f64();
        let _ = write!(
            h,
            "<tr><td>{}/{}/{}</td><td>{secs:.2}</td><td style=\"text-align:left\">\
             <span class=\"bar\" style=\"width:{}px\"></span></td></tr>",
            esc(&s.key.account_id),
            esc(&s.key.region),
            esc(&s.key.kind),
            (secs / max * 400.0).round() as u64
        );
    }
    let _ = writeln!(
        h,
        "<tr><td>whole resync</td><td>{:.2}</td><td></td></tr></table></body></html>",
        r.elapsed.as_secs_f64()
    );
    h
}
