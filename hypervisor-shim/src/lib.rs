//! ferrix shim (skeleton).
