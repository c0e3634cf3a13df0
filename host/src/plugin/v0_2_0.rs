//! Bindings for the plugin API `berth:plugin@0.2.0` (`wit/since_v0.2.0`), the version the
//! SDK builds today, and its imports (through [`super::imports`]). Its types are the plugin
//! host's own: the older version's adapter ([`super::v0_1_0`]) converts to them.

use super::imports::{impl_berth_imports, lookup_error};

wasmtime::component::bindgen!({
    path: "../wit/since_v0.2.0",
    world: "plugin",
    imports: { default: async },
    exports: { default: async },
});

pub use self::berth::plugin::types;

/// Lowest and highest `berth:plugin` versions this module serves.
pub const MIN_VERSION: (u64, u64, u64) = (0, 2, 0);
pub const MAX_VERSION: (u64, u64, u64) = (0, 2, 0);

/// The interfaces of the API a plugin may import (unversioned; the linker matches the
/// version): `log`, `cloud`, and `types` for their records. The same in every version.
pub const BERTH_IMPORTS: &[&str] = &[
    "berth:plugin/types",
    "berth:plugin/log",
    "berth:plugin/cloud",
];

impl_berth_imports!(self::berth::plugin);
