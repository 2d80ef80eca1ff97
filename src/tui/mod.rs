//! The live terminal view of `stacktop top` (ratatui): `App` holds the state (`app.rs`, with the callers/callees
//! tree in `tree.rs`, the annotate screen in `annotate.rs` and the locks screens in `locks.rs`), key handling
//! only changes it (`input.rs`), drawing only reads it (`view.rs`), and `event_loop.rs` owns the terminal. The samples come from elsewhere
//! (`cmd/top.rs` runs the sampler on its own threads) as one `Update` per refresh; the screens read the same
//! profile queries as `report`. Nothing here opens files or calls the kernel, apart from the terminal itself.

mod annotate;
pub mod app;
pub mod event_loop;
pub mod input;
mod locks;
mod tree;
pub mod view;

pub use app::{Annotation, Annotator, App, FuncRef, Limit, Screen, Status, Update};
pub use event_loop::run;
