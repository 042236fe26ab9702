//! Edge cases (to be written).
