//! The terminal: raw mode and the alternate screen (restored on return and, through ratatui's panic hook, on
//! a panic), then a loop that draws, waits for a key or an update, and hands annotate requests to a worker
//! thread so a slow disassembly never freezes the screen.

use std::io;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::Arc;
use std::time::Duration;

use ratatui::crossterm::event::{self, Event, KeyEventKind};

use super::app::{Annotation, Annotator, App, FuncRef, Request, Update};
use super::input::handle_key;
use super::view::{draw, page_rows, Theme};

/// Longest wait for a key before looking at the update channel again.
const POLL: Duration = Duration::from_millis(50);

/// Shown by `a` when no annotator is wired in.
pub const NO_ANNOTATOR: &str =
    "annotate is not available in this build yet (the annotate module is merged separately)";

/// Runs the UI until the user quits; `updates` is `None` for a recorded profile. Returns the final state.
pub fn run(
    mut app: App,
    updates: Option<Receiver<Update>>,
    annotator: Option<Arc<Annotator>>,
) -> io::Result<App> {
    let theme = Theme::from_env();
    let mut terminal = ratatui::try_init()?;
    let result = (|| -> io::Result<()> {
        let (done_tx, done_rx) = mpsc::channel::<(FuncRef, Result<Annotation, String>)>();
        let mut updates = updates;
        let mut dirty = true;
        while !app.quit {
            if dirty {
                let size = terminal.size()?;
                app.page = page_rows(size.height);
                terminal.draw(|frame| draw(frame, &app, theme))?;
                dirty = false;
            }
            if event::poll(POLL)? {
                match event::read()? {
                    Event::Key(key) if key.kind != KeyEventKind::Release => {
                        handle_key(&mut app, key);
                        dirty = true;
                    }
                    Event::Resize(..) => dirty = true,
                    _ => {}
                }
            }
            if let Some(rx) = &updates {
                loop {
                    match rx.try_recv() {
                        Ok(update) => {
                            app.update(update);
                            dirty = true;
                        }
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => {
                            updates = None;
                            break;
                        }
                    }
                }
            }
            for request in std::mem::take(&mut app.requests) {
                let Request::Annotate(func) = request;
                match &annotator {
                    None => app.annotated(&func, Err(NO_ANNOTATOR.to_owned())),
                    Some(annotator) => {
                        let annotator = Arc::clone(annotator);
                        let profile = app.profile().clone();
                        let done = done_tx.clone();
                        std::thread::spawn(move || {
                            let result = annotator(&profile, &func);
                            let _ = done.send((func, result));
                        });
                    }
                }
                dirty = true;
            }
            while let Ok((func, result)) = done_rx.try_recv() {
                app.annotated(&func, result);
                dirty = true;
            }
        }
        Ok(())
    })();
    ratatui::restore();
    result.map(|()| app)
}
