//! Not written yet.

use tokio::task::JoinSet;

use crate::Context;

pub fn start(_ctx: &Context, _tasks: &mut JoinSet<()>) {}
