//! ferrix kernel (skeleton).
#![cfg_attr(not(test), no_std)]
