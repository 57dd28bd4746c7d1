//! The access-log parser: the first byte picks a format, the rest is one
//! line. Any line may be refused; none may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stacktop_agent::logs::{Format, Parser};

const FORMATS: [&str; 5] = [
    "nginx-combined",
    "nginx-timed",
    "stacktop",
    "haproxy-http",
    "$remote_addr [$time_local] \"$request\" $status $body_bytes_sent $request_time",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, line)) = data.split_first() else {
        return;
    };
    let format = Format::parse(FORMATS[usize::from(pick) % FORMATS.len()]).expect("a known format");
    let mut parser = Parser::new(format);
    let _ = parser.parse(line);
});
