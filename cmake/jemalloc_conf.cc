// jemalloc's start-up options, compiled into each walrus program (read by
// jemalloc before main, whatever the environment says; MALLOC_CONF can still
// add to them).
//
// Why: recovery and ReadAll parse every entry of the log into fresh heap
// memory (one allocation per entry's data: ~1 GiB for a 1 GiB log). On 4 KiB
// pages that is ~260,000 page faults, which on a virtual machine cost more
// than everything else ReadAll does (docs/benchmarks.md: 5.9 s against 0.67 s
// for a 1 GiB log on the benchmark machine). thp:always lets jemalloc back its
// extents with transparent huge pages (it madvises them, so it works with the
// kernel's default THP mode "madvise"); metadata_thp does the same for its own
// bookkeeping.
extern "C" {
// NOLINTNEXTLINE: the name and type are jemalloc's ABI.
const char* malloc_conf = "thp:always,metadata_thp:always";
}
