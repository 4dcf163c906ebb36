// SPDX-License-Identifier: GPL-2.0
#![forbid(unsafe_code)]

//! `scale-model`: prints the scale model's table (see the library's
//! documentation). Run with `--help` for the options.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Instant;

use tdx_sept_guard_scale_model::{
    run, sweep_variants, vcpu_counts, write_header, Config, ModelError, Row, Table, MAX_VCPUS,
};

const USAGE: &str = "\
usage: scale-model [options]
  --max-vcpus N      largest vCPU count (1..=256; default 256); rows 1, 2, 4, ... N
  --kicks K          kicks modelled per vCPU count (default 1000)
  --seed S           seed of every modelled draw (default 1)
  --kick-rate R      kicks per second per VM for the gated% column (default 1000)
  --guest-us G       mean guest section between VM exits, us (default 100)
  --anchor-scale F   multiply every assumed time by F (sweep 0.5..2; default 1)
  --ipi-k K          the kick formula's k (0.2 host, 0.45 guest; default 0.2)
  --csv FILE         also write the table as CSV to FILE
  --no-sweep         skip the sensitivity sweep (anchors x0.5/x2, k, guest section)
  -h, --help         this text
Prints a MODEL, not a measurement: see Documentation/scale-model.rst.";

struct Args {
    cfg: Config,
    max: usize,
    csv: Option<String>,
    sweep: bool,
}

fn parse<I: Iterator<Item = String>>(mut it: I) -> Result<Option<Args>, String> {
    let mut cfg = Config::default();
    let mut max = MAX_VCPUS;
    let mut csv = None;
    let mut sweep = true;
    let mut scale = 1.0f64;
    while let Some(arg) = it.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(None);
        }
        if arg == "--no-sweep" {
            sweep = false;
            continue;
        }
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{key} needs a value"))
        };
        fn num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, String> {
            v.parse().map_err(|_| format!("{key}: not a number: {v}"))
        }
        match key.as_str() {
            "--max-vcpus" => max = num(&key, &value()?)?,
            "--kicks" => cfg.kicks = num(&key, &value()?)?,
            "--seed" => cfg.seed = num(&key, &value()?)?,
            "--kick-rate" => cfg.kick_rate = num(&key, &value()?)?,
            "--guest-us" => {
                let us: f64 = num(&key, &value()?)?;
                if !(us > 0.0 && us < 1e9) {
                    return Err(format!("{key}: out of range: {us}"));
                }
                cfg.guest_mean_ns = (us * 1000.0).round() as u64;
            }
            "--anchor-scale" => scale = num(&key, &value()?)?,
            "--ipi-k" => {
                let k: f64 = num(&key, &value()?)?;
                if !(0.0..=1.0).contains(&k) {
                    return Err(format!("{key}: must be within 0..=1: {k}"));
                }
                cfg.anchors.ipi_k_milli = (k * 1000.0).round() as u64;
            }
            "--csv" => csv = Some(value()?),
            _ => return Err(format!("unknown argument: {arg}")),
        }
    }
    if !(1..=MAX_VCPUS).contains(&max) {
        return Err(format!("--max-vcpus must be 1 to {MAX_VCPUS}, not {max}"));
    }
    if !(scale > 0.0 && scale <= 100.0) {
        return Err(format!("--anchor-scale must be in (0, 100], not {scale}"));
    }
    cfg.anchors = cfg.anchors.scaled(scale);
    cfg.validate().map_err(|e| e.to_string())?;
    Ok(Some(Args {
        cfg,
        max,
        csv,
        sweep,
    }))
}

/// The sensitivity sweep: N=1 and N=`max` under each variant.
fn sweep(cfg: &Config, max: usize, table: &Table) -> Result<(), ModelError> {
    println!(
        "\nSensitivity (MODEL; same seed and kicks, N=1 and N={max} only):\n\
         {:<18} {:>10} {:>10} {:>7} {:>10} {:>10} {:>7}",
        "variant",
        "cost N=1",
        format!("cost N={max}"),
        "x",
        "gated% 1",
        format!("gated% {max}"),
        "x"
    );
    for (i, (label, c)) in sweep_variants(cfg).into_iter().enumerate() {
        let mut t = Table::default();
        if i == 0 {
            // The table's own first and last rows.
            t.rows.extend(table.rows.first().cloned());
            t.rows.extend(table.rows.last().cloned());
        } else {
            for n in [1, max] {
                t.push(Row::new(&run(n, &c)?, &c));
            }
        }
        let (a, b) = (&t.rows[0], &t.rows[1]);
        if b.violations != 0 || b.anomalies != 0 {
            return Err(ModelError::Outcome(format!("{label}: gate violations")));
        }
        println!(
            "{:<18} {:>8.2}us {:>8.2}us {:>7.2} {:>10.3} {:>10.3} {:>7.2}",
            label,
            a.cost_mean_us,
            b.cost_mean_us,
            b.cost_ratio,
            a.gated_pct,
            b.gated_pct,
            b.pct_ratio
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("scale-model: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let start = Instant::now();
    let cfg = &args.cfg;
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = write_header(&mut text, cfg, args.max);
    let _ = Table::header(&mut text, cfg);
    print!("{text}");
    let mut table = Table::default();
    for n in vcpu_counts(args.max) {
        let result = match run(n, cfg) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("scale-model: N={n}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let row = table.push(Row::new(&result, cfg));
        let mut line = String::new();
        let _ = Table::line(&mut line, row);
        print!("{line}");
        let _ = std::io::stdout().flush();
        if row.violations != 0 || row.anomalies != 0 {
            eprintln!(
                "scale-model: N={n}: {} vCPUs found in the guest under the gate, {} anomalies",
                row.violations, row.anomalies
            );
            return ExitCode::FAILURE;
        }
    }
    if let Some(last) = table.rows.last() {
        println!(
            "\nCross-check at N={}: model mean kick cost {:.1} us for {:.1} vCPUs kicked; the notes'\n\
             formula 2 us x (1 + k(n-1)) + slowest exit gives {:.1} us (with the anchors' scale).\n\
             No vCPU was found in guest mode under the gate after the acks (checked twice per kick).",
            last.n, last.cost_mean_us, last.kicked_per_kick, last.formula_us
        );
    }
    if args.sweep && args.max > 1 {
        if let Err(e) = sweep(cfg, args.max, &table) {
            eprintln!("scale-model: sweep: {e}");
            return ExitCode::FAILURE;
        }
    }
    if let Some(path) = &args.csv {
        let mut csv = String::new();
        let _ = table.csv(&mut csv, cfg);
        if let Err(e) = std::fs::write(path, csv) {
            eprintln!("scale-model: cannot write {path}: {e}");
            return ExitCode::FAILURE;
        }
        println!("CSV written to {path}");
    }
    println!(
        "Run time: {:.1} s on the host ({} threads at most).",
        start.elapsed().as_secs_f64(),
        args.max + 1
    );
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<Option<Args>, String> {
        parse(s.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn options_parse_and_out_of_range_values_are_refused() {
        let a = args("--max-vcpus 64 --kicks=5 --seed 9 --csv x.csv --no-sweep")
            .unwrap()
            .unwrap();
        assert_eq!((a.max, a.cfg.kicks, a.cfg.seed), (64, 5, 9));
        assert_eq!(a.csv.as_deref(), Some("x.csv"));
        assert!(!a.sweep);
        let d = args("").unwrap().unwrap();
        assert_eq!((d.max, d.cfg.kicks, d.sweep), (MAX_VCPUS, 1000, true));
        let s = args("--anchor-scale 2 --ipi-k 0.45").unwrap().unwrap();
        assert_eq!(s.cfg.anchors.seamcall_ns, 4_000);
        assert_eq!(s.cfg.anchors.ipi_k_milli, 450);
        assert!(args("--help").unwrap().is_none());
        for bad in [
            "--max-vcpus 257",
            "--max-vcpus 0",
            "--kicks 0",
            "--kicks",
            "--seed x",
            "--anchor-scale 0",
            "--ipi-k 2",
            "--kick-rate 0",
            "--guest-us 0",
            "--frobnicate",
        ] {
            assert!(args(bad).is_err(), "{bad} accepted");
        }
    }
}
