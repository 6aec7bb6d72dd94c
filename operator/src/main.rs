//! `operator crd` prints the CRD YAML; `operator run` (the default) runs the controller.

use anyhow::Context as _;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("crd") => {
            print!(
                "{}",
                operator::crd::crd_yaml().context("rendering the CRD")?
            );
            Ok(())
        }
        Some(other) => anyhow::bail!("unknown command {other:?}; use `crd` or `run`"),
        None => anyhow::bail!("no command; use `crd` or `run`"),
    }
}
