// Package bench holds vzlocal's benchmarks. They report ratios measured in one run (for example
// parallel vs sequential rollouts, our GEMM throughput vs OpenBLAS sgemm) rather than absolute
// times, and they are never part of the unit tests' pass/fail. Run them with `make bench`; the
// measured tables live in bench/README.md with the command, machine and date.
package bench
