//! ferrix command (skeleton).
