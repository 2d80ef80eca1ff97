//! The annotate screen's state: the `annotate::Annotation` an `Annotator` built for one function (drawn as it
//! is, by `view.rs`), and where the cursor is.

use super::app::{App, FuncRef, Request, Screen};
pub use crate::annotate::Annotation;
use crate::annotate::ViewLine;
use crate::profile::{Profile, Weigh};
use crate::symbolize::DebugInfo;

/// Builds the annotation of a function from a profile (`annotate::annotate`); runs off the drawing thread.
pub type Annotator = dyn Fn(&Profile, &FuncRef) -> Result<Annotation, String> + Send + Sync;

#[derive(Clone, Debug, PartialEq)]
pub struct AnnotateView {
    pub func: FuncRef,
    /// `None` while the annotator runs.
    pub result: Option<Result<Box<Annotation>, String>>,
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
        self.annotated_in(self.view(), func, result);
    }

    /// The annotator's answer for a profile weighed in `view`: dropped when the view has changed since (the
    /// annotation of the new view is on its way).
    pub fn annotated_in(
        &mut self,
        view: Weigh,
        func: &FuncRef,
        result: Result<Annotation, String>,
    ) {
        if view != self.view() {
            return;
        }
        for screen in self.screens.iter_mut().rev() {
            if let Screen::Annotate(view) = screen {
                if &view.func == func && view.result.is_none() {
                    view.selected = result
                        .as_ref()
                        .ok()
                        .and_then(|a| hottest_line(&a.lines))
                        .unwrap_or(0);
                    view.result = Some(result.map(Box::new));
                    return;
                }
            }
        }
    }
}

/// The line above the rows: what the reader should know (no debug info, other modules of the same name...).
pub fn note(annotation: &Annotation) -> Option<String> {
    let mut notes = annotation.notes.clone();
    if annotation.debug_info == DebugInfo::None {
        notes.insert(0, "no debug info: disassembly only".to_owned());
    }
    (!notes.is_empty()).then(|| notes.join("; "))
}

/// The index of the line with the highest share.
pub fn hottest_line(lines: &[ViewLine]) -> Option<usize> {
    lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.share > 0.0)
        .max_by(|a, b| a.1.share.total_cmp(&b.1.share).then(b.0.cmp(&a.0)))
        .map(|(i, _)| i)
}
