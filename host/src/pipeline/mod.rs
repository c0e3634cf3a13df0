//! The pipeline: what wires the stages of the data flow together, from a mapping file
//! ([`crate::mapping`]) and raw items (or a config file and AWS) to Port.
//!
//! - [`map`]: raw items → entities through the plugins (`berth map`, and a sync's map stage).
//! - [`resync`]: one resync end to end: discovery → map → catalog, streaming.
//! - [`runner`]: a resync built from a config file, and the loop of `berth run` around it.
//! - [`golden`]: `berth plugin test`: golden cases run through the map stage.
//! - [`display`]: the live terminal display of a running resync and its summary.
//! - [`report`]: the HTML report an operator reads after a resync.
//!
//! Must not touch: AWS calls (they belong to [`crate::discovery`]), sandbox internals
//! ([`crate::plugin`]) or Port requests ([`crate::catalog`]); this module only connects them.

pub mod display;
pub mod golden;
pub mod map;
pub mod report;
pub mod resync;
pub mod runner;
