//! krate's node agent. [`simulated`]: nodes without containers, as KWOK
//! does, to run controllers and the scheduler at scale.

pub mod agent;
pub mod env;
pub mod server;
pub mod simulated;
pub mod volumes;
