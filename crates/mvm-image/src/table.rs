//! The package table and its resolver live in `mvm-packages`, which the
//! compiler asks too (so compile warns about exactly what build refuses);
//! re-exported here for the builder's modules and callers.

pub use mvm_packages::{
    DepsTool, Entry, Problem, Provision, ResolveError, Resolver, RootPlan, Subject, Suite, TABLE,
    WheelLayout, WheelReq, lookup,
};
