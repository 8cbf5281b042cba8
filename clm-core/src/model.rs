//! Plain data, no I/O: typed ids, status enums, JSON documents and one record
//! struct per table.

pub mod documents;
pub mod ids;
pub mod records;
pub mod status;

pub use documents::*;
pub use ids::*;
pub use records::*;
pub use status::*;
