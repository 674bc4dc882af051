//! Writes the app's blueprint to the file given as the only argument, for pavexc:
//!
//! ```sh
//! cargo run -p app --bin bp -- target/blueprint.ron
//! pavexc generate -b target/blueprint.ron -o server_sdk
//! ```
//!
//! `scripts/generate-server-sdk.sh` (at the repository's root) runs both.
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path: PathBuf = std::env::args_os()
        .nth(1)
        .ok_or("usage: bp <blueprint.ron>")?
        .into();
    app::blueprint().persist(&path)?;
    Ok(())
}
