//! One module per client event (plus disconnect), each a pure function over the room table.
//! The glue to socketioxide is `crate::socket`, outside this module: it calls the hub, which
//! calls these, so keeping it here made `handlers` and `hub` import each other.

pub(crate) mod bye;
pub(crate) mod disconnect;
pub(crate) mod join;
pub(crate) mod prepare;
pub(crate) mod relay;
