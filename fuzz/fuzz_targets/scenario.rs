//! Scenario files: loading arbitrary text never panics, and whatever loads is written back by
//! `to_toml` as a file that loads to an equal scenario, which writes back to the same text.
#![no_main]

use dispatcher_core::sim::scenario::{parse, to_toml};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(scenario) = parse(&text, "fuzz.toml") {
        let written = to_toml(&scenario);
        let back = match parse(&written, "fuzz.toml") {
            Ok(back) => back,
            Err(e) => panic!("to_toml wrote a file parse rejects: {e}\n{written}"),
        };
        assert_eq!(back, scenario);
        assert_eq!(to_toml(&back), written);
    }
});
