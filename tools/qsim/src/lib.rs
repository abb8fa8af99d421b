//! qsim
