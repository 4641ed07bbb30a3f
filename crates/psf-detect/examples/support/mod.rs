//! What the training programs share: their arguments, a reproducible shuffle and
//! confusion counts.

/// The options that take a value: the word after one is its value, not a data file.
const VALUED: [&str; 3] = ["--out", "--negatives", "--seed"];

/// The data files named on the command line and the `--out` path, if any; `None`
/// (after printing `usage`) when no data file is named.
pub fn args(usage: &str) -> Option<(Vec<String>, Option<String>)> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let inputs: Vec<String> = args
        .iter()
        .enumerate()
        .filter(|(i, a)| {
            !a.starts_with("--") && args.get(i.wrapping_sub(1)).is_none_or(|p| !VALUED.contains(&p.as_str()))
        })
        .map(|(_, a)| a.clone())
        .collect();
    if inputs.is_empty() {
        eprintln!("usage: {usage}");
        return None;
    }
    Some((inputs, values("--out").pop()))
}

/// The values given to option `name` (one of `VALUED`), in order.
pub fn values(name: &str) -> Vec<String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    args.windows(2).filter(|w| w[0] == name).map(|w| w[1].clone()).collect()
}

/// Fisher–Yates with a fixed xorshift generator, so every run trains the same model.
pub fn shuffle<T>(v: &mut [T], mut seed: u64) {
    for i in (1..v.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        v.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}

/// True and false positives and negatives.
#[derive(Debug, Default, Clone, Copy)]
pub struct Confusion {
    pub tp: usize,
    pub fp: usize,
    pub fn_: usize,
    pub tn: usize,
}

impl Confusion {
    pub fn add(&mut self, flagged: bool, label: bool) {
        match (flagged, label) {
            (true, true) => self.tp += 1,
            (true, false) => self.fp += 1,
            (false, true) => self.fn_ += 1,
            (false, false) => self.tn += 1,
        }
    }
    pub fn recall(&self) -> f64 {
        self.tp as f64 / (self.tp + self.fn_).max(1) as f64
    }
    pub fn precision(&self) -> f64 {
        self.tp as f64 / (self.tp + self.fp).max(1) as f64
    }
    pub fn fpr(&self) -> f64 {
        self.fp as f64 / (self.fp + self.tn).max(1) as f64
    }
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 { 0.0 } else { 2.0 * p * r / (p + r) }
    }
}
