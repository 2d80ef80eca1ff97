//! The terminal: raw mode and the alternate screen (restored on return and, through ratatui's panic hook, on
//! a panic), then a loop that sleeps until something happens (a key, a resize, a profile update, a finished
//! annotation), applies it and draws. Keys are read on a thread of their own and annotate requests run on
//! worker threads, so a slow disassembly never freezes the screen and an idle screen costs no wake-ups.

use std::io;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;

use ratatui::crossterm::event::{self, Event, KeyEvent, KeyEventKind};

use super::app::{Annotation, Annotator, App, FuncRef, Request, Update};
use super::input::handle_key;
use super::view::{draw, page_rows, Theme};
use crate::profile::Weigh;

/// Shown by `a` when no annotator is wired in.
pub const NO_ANNOTATOR: &str =
    "annotate is not available in this build yet (the annotate module is merged separately)";

/// What wakes the loop.
pub enum Wake {
    Key(KeyEvent),
    Resize,
    /// The terminal could not be read.
    InputFailed(io::Error),
    Update(Box<Update>),
    /// An annotation of a profile weighed in a view.
    Annotated(Weigh, FuncRef, Box<Result<Annotation, String>>),
}

/// Runs the UI until the user quits; `updates` is `None` for a recorded profile. Returns the final state.
pub fn run(
    mut app: App,
    updates: Option<Receiver<Update>>,
    annotator: Option<Arc<Annotator>>,
) -> io::Result<App> {
    let theme = Theme::from_env();
    let mut terminal = ratatui::try_init()?;
    let result = (|| -> io::Result<()> {
        let (wake_tx, wake) = mpsc::channel::<Wake>();
        // Both threads end by themselves once the loop is gone: the next send fails. The key reader may stay
        // blocked on the terminal until the process exits, which holds nothing.
        spawn("stacktop-keys", read_keys(wake_tx.clone()))?;
        if let Some(updates) = updates {
            let tx = wake_tx.clone();
            spawn("stacktop-updates", move || {
                while let Ok(update) = updates.recv() {
                    if tx.send(Wake::Update(Box::new(update))).is_err() {
                        break;
                    }
                }
            })?;
        }
        while !app.quit {
            let size = terminal.size()?;
            app.page = page_rows(&app, size.width, size.height);
            terminal.draw(|frame| draw(frame, &app, theme))?;
            // Everything pending is applied before the next draw: one draw per burst of updates.
            let Ok(first) = wake.recv() else {
                break;
            };
            apply(
                &mut app,
                std::iter::once(first).chain(wake.try_iter()).collect(),
            )?;
            for request in std::mem::take(&mut app.requests) {
                let Request::Annotate(func) = request;
                match &annotator {
                    None => app.annotated(&func, Err(NO_ANNOTATOR.to_owned())),
                    Some(annotator) => {
                        let annotator = Arc::clone(annotator);
                        let profile = app.profile().clone();
                        let view = app.view();
                        let done = wake_tx.clone();
                        std::thread::spawn(move || {
                            let result = annotator(&profile, &func);
                            let _ = done.send(Wake::Annotated(view, func, Box::new(result)));
                        });
                    }
                }
            }
        }
        Ok(())
    })();
    ratatui::restore();
    result.map(|()| app)
}

/// Applies what arrived since the last draw. The keys go first, in the order pressed: each was pressed with
/// the last drawn screen in view (changed only by the keys before it), so Enter, `a` or `d` act on the row
/// highlighted there even when an update that reorders the rows arrived in between. The updates and
/// annotations follow, to be seen at the next draw. Stops at a quit key; fails when the terminal could not be
/// read.
pub fn apply(app: &mut App, batch: Vec<Wake>) -> io::Result<()> {
    let (keys, data): (Vec<Wake>, Vec<Wake>) = batch
        .into_iter()
        .partition(|w| matches!(w, Wake::Key(_) | Wake::Resize | Wake::InputFailed(_)));
    for woken in keys.into_iter().chain(data) {
        match woken {
            Wake::Key(key) => handle_key(app, key),
            Wake::Resize => {}
            Wake::InputFailed(e) => return Err(e),
            Wake::Update(update) => app.update(*update),
            Wake::Annotated(view, func, result) => app.annotated_in(view, &func, *result),
        }
        if app.quit {
            break;
        }
    }
    Ok(())
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .map(drop)
}

/// Forwards key presses and resizes until the loop is gone or the terminal cannot be read.
fn read_keys(tx: Sender<Wake>) -> impl FnOnce() + Send + 'static {
    move || loop {
        let wake = match event::read() {
            Ok(Event::Key(key)) if key.kind != KeyEventKind::Release => Wake::Key(key),
            Ok(Event::Resize(..)) => Wake::Resize,
            Ok(_) => continue,
            Err(e) => Wake::InputFailed(e),
        };
        let failed = matches!(wake, Wake::InputFailed(_));
        if tx.send(wake).is_err() || failed {
            break;
        }
    }
}
