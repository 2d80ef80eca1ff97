//! The live terminal view of `stacktop top` (ratatui): `App` holds the state (`app.rs`), key handling only
//! changes it (`input.rs`), drawing only reads it (`view.rs`), and `event_loop.rs` owns the terminal. The
//! samples come from elsewhere (`cmd/top.rs` runs the sampler on its own threads) as one `Update` per refresh;
//! the screens read the same profile queries as `report`. Nothing here opens files or calls the kernel, apart
//! from the terminal itself.

pub mod app;
pub mod event_loop;
pub mod input;
pub mod view;

pub use app::{
    AnnotatedLine, Annotation, Annotator, App, FuncRef, LineKind, Screen, Status, Update,
};
pub use event_loop::run;
