//! The annotate screen's state: what an `Annotator` built for one function, and where the cursor is.

use super::app::{App, FuncRef, Request, Screen};
use crate::profile::Profile;

/// What annotate shows for one function: source lines and instructions with their share of the function's
/// samples. Built by an `Annotator` (the annotate module), drawn by `view.rs`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Annotation {
    pub function: String,
    pub module: String,
    pub lines: Vec<AnnotatedLine>,
    /// Why something is missing (no debug info, binary gone).
    pub note: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AnnotatedLine {
    pub kind: LineKind,
    pub text: String,
    /// Percent of the function's samples on this line or instruction.
    pub share: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineKind {
    /// A source line, with its number.
    Source(u32),
    /// An instruction, with its address.
    Instruction(u64),
}

/// Builds an annotation of a function from a profile; runs off the drawing thread.
pub type Annotator = dyn Fn(&Profile, &FuncRef) -> Result<Annotation, String> + Send + Sync;

/// Lines at or above this share are "hot": highlighted, and where `n` jumps.
pub const HOT_LINE: f64 = 5.0;

#[derive(Clone, Debug, PartialEq)]
pub struct AnnotateView {
    pub func: FuncRef,
    /// `None` while the annotator runs.
    pub result: Option<Result<Annotation, String>>,
    pub selected: usize,
}

impl App {
    /// `a`: opens the annotate screen; the event loop runs the annotator and hands the result back.
    pub fn open_annotate(&mut self, func: FuncRef) {
        self.requests.push(Request::Annotate(func.clone()));
        self.screens.push(Screen::Annotate(AnnotateView {
            func,
            result: None,
            selected: 0,
        }));
    }

    /// The annotator's answer, shown if its screen is still open.
    pub fn annotated(&mut self, func: &FuncRef, result: Result<Annotation, String>) {
        for screen in self.screens.iter_mut().rev() {
            if let Screen::Annotate(view) = screen {
                if &view.func == func && view.result.is_none() {
                    view.selected = result
                        .as_ref()
                        .ok()
                        .and_then(|a| hottest_line(&a.lines))
                        .unwrap_or(0);
                    view.result = Some(result);
                    return;
                }
            }
        }
    }
}

/// The index of the line with the highest share.
pub fn hottest_line(lines: &[AnnotatedLine]) -> Option<usize> {
    lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.share > 0.0)
        .max_by(|a, b| a.1.share.total_cmp(&b.1.share).then(b.0.cmp(&a.0)))
        .map(|(i, _)| i)
}
