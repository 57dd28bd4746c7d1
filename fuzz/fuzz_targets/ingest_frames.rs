//! Batch decode and ingest: length-delimited `AgentFrame`s applied as one
//! agent's stream to a fresh store, then the fleet evaluated. Bad frames,
//! values, ids and seqs are refused or skipped; nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    stacktop_collector::ingest::fuzzing::frames(data);
});
