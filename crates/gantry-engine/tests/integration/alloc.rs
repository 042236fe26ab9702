//! Single-flag evaluation allocates nothing (filled in by the benchmark work).
