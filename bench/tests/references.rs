//! The committed reference runs are what the code makes of their raw data:
//! each `results/<run>/REPORT.md` is `bench render` of its `raw.json`. A
//! change to the report's wording or arithmetic must re-render them
//! (`cargo run --release --bin bench -- render results/<run>`), so a
//! number quoted from a committed report is always one the code computes.

#[test]
fn committed_reports_are_their_raw_data_rendered() {
    let results = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../results");
    let mut checked = 0;
    for entry in std::fs::read_dir(&results).expect("results/").flatten() {
        let dir = entry.path();
        if !dir.join("raw.json").exists() {
            continue;
        }
        let raw =
            bench::record::Raw::read(&dir).unwrap_or_else(|e| panic!("{}: {e:#}", dir.display()));
        let committed =
            std::fs::read_to_string(dir.join("REPORT.md")).expect("REPORT.md beside raw.json");
        let rendered = bench::output::report::render(&raw);
        let differing: Vec<(&str, &str)> = committed
            .lines()
            .zip(rendered.lines())
            .filter(|(a, b)| a != b)
            .take(3)
            .collect();
        assert!(
            committed == rendered,
            "{} is stale: re-render it with `bench render` ({} vs {} lines; first differences: {differing:#?})",
            dir.display(),
            committed.lines().count(),
            rendered.lines().count()
        );
        checked += 1;
    }
    assert!(
        checked >= 1,
        "no committed reference run under {}",
        results.display()
    );
}
