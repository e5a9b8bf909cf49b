//! tokio_placed --workload mt-pingpong [--n N] [--threads 2]
//!
//! WORKLOADS.md's mt-pingpong with corio's placement: the two tasks on two
//! given threads. Tokio's multi_thread runtime cannot place a task on a
//! worker (a task woken on a worker goes to that worker's LIFO slot, so the
//! shared peer's two tasks end up taking turns on one worker), so this is
//! what a Tokio user writes to keep a task on a thread: a `current_thread`
//! runtime per thread, the pinger on the main thread and the ponger on a
//! second one, passing a counter through two `tokio::sync::mpsc::channel(1)`.
//! An idle `current_thread` runtime parks its thread (it does not spin).
//! Prints one JSON line like the shared peers' (cpu_s: getrusage user+sys of
//! the whole process over the measured part).
use std::time::Instant;
use tokio::sync::mpsc;

#[path = "../rusage.rs"]
mod rusage;
use rusage::{cpu_seconds, peak_rss_kb};

fn usage(message: &str) -> ! {
    eprintln!("tokio_placed: {message}\nusage: tokio_placed --workload mt-pingpong [--n N] [--threads 2]");
    std::process::exit(2);
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().expect("a current_thread runtime")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut n: u64 = 1_000_000;
    let mut workload = String::new();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).unwrap_or_else(|| usage("an option lacks its value"));
        match args[i].as_str() {
            "--workload" => workload = value.clone(),
            "--n" => n = value.parse().unwrap_or_else(|_| usage("--n takes a count")),
            "--threads" => {
                if value != "2" {
                    usage("--threads takes 2 (a thread per task)")
                }
            }
            other => usage(&format!("unknown option {other}")),
        }
        i += 2;
    }
    if workload != "mt-pingpong" {
        usage("--workload takes mt-pingpong");
    }

    let (to_ponger, mut from_pinger) = mpsc::channel::<u64>(1);
    let (to_pinger, mut from_ponger) = mpsc::channel::<u64>(1);
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let ponger = std::thread::spawn(move || {
        current_thread().block_on(async move {
            for _ in 0..n {
                let c = from_pinger.recv().await.expect("the pinger is there");
                to_pinger.send(c + 1).await.expect("the pinger is there");
            }
        })
    });
    let c = current_thread().block_on(async move {
        let mut c = 0u64;
        for _ in 0..n {
            to_ponger.send(c).await.expect("the ponger is there");
            c = from_ponger.recv().await.expect("the ponger is there");
        }
        c
    });
    ponger.join().expect("the ponger's thread ends");
    let seconds = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    println!(
        "{{\"impl\":\"tokio-placed\",\"workload\":\"mt-pingpong\",\"n\":{n},\"threads\":2,\
         \"placement\":\"a current_thread runtime per task, on two threads\",\
         \"seconds\":{seconds:.6},\"per_op_ns\":{:.3},\"ops_per_s\":{:.1},\"cpu_s\":{cpu:.6},\
         \"cpu_per_op_ns\":{:.3},\"peak_rss_kb\":{},\"check\":{c},\"check_ok\":{}}}",
        seconds * 1e9 / n as f64,
        n as f64 / seconds,
        cpu * 1e9 / n as f64,
        peak_rss_kb(),
        c == n
    );
}
