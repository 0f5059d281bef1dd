//! Child processes of the store's tests, run in their own process so that a
//! test can kill them or give them their own mount namespace:
//!
//! - `store-test-child crash DIR ROUND WRITERS`: write until killed
//!   (`store::testing::crash`);
//! - `store-test-child fill DIR`: fill the filesystem holding DIR and check
//!   that the store fails cleanly (`store::testing::disk_full`).

fn usage() -> ! {
    eprintln!("usage: store-test-child crash DIR ROUND WRITERS | fill DIR");
    std::process::exit(2);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["crash", dir, round, writers] => {
            let (Ok(round), Ok(writers)) = (round.parse(), writers.parse()) else {
                usage()
            };
            store::testing::crash::run_writer(std::path::Path::new(dir), round, writers)
        }
        ["fill", dir] => match store::testing::disk_full::fill_and_check(std::path::Path::new(dir))
        {
            Ok(report) => println!("{report}"),
            Err(e) => {
                eprintln!("disk-full check failed: {e}");
                std::process::exit(1);
            }
        },
        _ => usage(),
    }
}
