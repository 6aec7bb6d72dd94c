//! Runs the test mock broker on a port, to try loadgen or tests/bench/run.sh without
//! a real broker: `cargo run -p loadgen --example mock_broker -- 127.0.0.1:19092`.

#[path = "../tests/mock/mod.rs"]
mod mock;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:19092".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("mock broker on {addr}");
    mock::serve(listener).await;
    Ok(())
}
