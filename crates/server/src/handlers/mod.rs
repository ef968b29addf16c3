//! One module per client event (plus disconnect), each a pure function over the room table,
//! and `socket`, the glue to socketioxide.

pub(crate) mod bye;
pub(crate) mod disconnect;
pub(crate) mod join;
pub(crate) mod relay;
pub(crate) mod socket;
