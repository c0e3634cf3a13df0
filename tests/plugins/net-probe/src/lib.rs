//! Opens a TCP connection from `describe()`, so the component imports
//! `wasi:sockets`: Berth must refuse to load it.

use berth_plugin_sdk::{Info, Plugin};

struct NetProbe;

impl Plugin for NetProbe {
    fn info() -> Info {
        let reached = std::net::TcpStream::connect("127.0.0.1:9").is_ok();
        Info::new("net-probe", env!("CARGO_PKG_VERSION"))
            .kind("Test::Sandbox::Net")
            .default_mapping(if reached { "connected" } else { "refused" })
    }
}

berth_plugin_sdk::export_plugin!(NetProbe);
