//! `bench images`: the container images, static musl binaries FROM
//! scratch, with a progress bar over the steps.

use super::{progress, workspace};
use crate::record::ImagesRecord;
use crate::target::images;

/// Builds every image (with `list`, only prints their references).
pub fn run(list: bool) -> anyhow::Result<()> {
    if list {
        for image in images::IMAGES {
            println!("{}", image.reference());
        }
        return Ok(());
    }
    let record = build()?;
    println!("static binaries built in {:.0} s", record.cargo_build_s);
    for i in &record.images {
        println!(
            "{:<22} {:>6.1} MB (binary {:.1} MB), docker build {:.1} s",
            i.reference,
            i.bytes as f64 / 1e6,
            i.binary_bytes as f64 / 1e6,
            i.build_s
        );
    }
    println!(
        "recorded in {}",
        images::images_dir(&workspace())
            .join("images.json")
            .display()
    );
    Ok(())
}

/// Builds every image, showing each step.
pub fn build() -> anyhow::Result<ImagesRecord> {
    let bar = progress(images::IMAGES.len() as u64 + 1, "steps");
    let record = images::build_all(&workspace(), |step| {
        bar.inc(1);
        bar.set_message(step.to_owned());
    })?;
    bar.finish_and_clear();
    Ok(record)
}
