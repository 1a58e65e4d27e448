//! Progress and prompts on stderr.
//!
//! Spinners fall back to plain lines when stderr is not a terminal. Prompts go through the
//! [`Prompter`] trait: [`Interactive`] asks with inquire, [`NoPrompt`] answers from defaults
//! (with `--yes`) or fails naming the key, and [`Scripted`] replays answers in tests.

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cli::UsageError;

/// Output on stderr: notes, warnings and spinners.
#[derive(Debug, Clone)]
pub struct Ui {
    quiet: bool,
    silent: bool,
    terminal: bool,
}

impl Ui {
    /// Output for a step; `quiet` keeps only warnings and errors.
    pub fn new(quiet: bool) -> Self {
        Self { quiet, silent: false, terminal: std::io::stderr().is_terminal() }
    }

    /// No output at all, for tests.
    pub fn silent() -> Self {
        Self { quiet: true, silent: true, terminal: false }
    }

    /// A header line naming the step.
    pub fn header(&self, step: &str, what: &str) {
        if !self.quiet {
            eprintln!("==> {step}: {what}");
        }
    }

    /// A progress note.
    pub fn note(&self, message: &str) {
        if !self.quiet {
            eprintln!("    {message}");
        }
    }

    /// A warning, shown even with `-q`.
    pub fn warn(&self, message: &str) {
        if !self.silent {
            eprintln!("warning: {message}");
        }
    }

    /// Starts a spinner for a remote wait.
    pub fn spinner(&self, message: &str) -> Spinner {
        let bar = if self.terminal && !self.quiet {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(120));
            bar.set_message(message.to_string());
            Some(bar)
        } else {
            self.note(&format!("{message} ..."));
            None
        };
        Spinner { bar, ui: self.clone(), started: Instant::now() }
    }
}

/// A running spinner; finish it with a summary line.
#[derive(Debug)]
pub struct Spinner {
    bar: Option<indicatif::ProgressBar>,
    ui: Ui,
    started: Instant,
}

impl Spinner {
    /// Updates the message.
    pub fn set_message(&self, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(message.to_string());
        }
    }

    /// Stops the spinner and prints `message` with the elapsed time.
    pub fn finish(self, message: &str) {
        let line = format!("{message} ({:.1} s)", self.started.elapsed().as_secs_f64());
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        self.ui.note(&line);
    }
}

/// Asks the operator for values.
pub trait Prompter {
    /// A free-text value for `key`.
    fn text(&mut self, key: &str, message: &str, default: Option<&str>) -> anyhow::Result<String>;
    /// A yes/no question.
    fn confirm(&mut self, key: &str, message: &str, default: bool) -> anyhow::Result<bool>;
    /// One of `options`; returns its index.
    fn select(
        &mut self,
        key: &str,
        message: &str,
        options: &[String],
        default: usize,
    ) -> anyhow::Result<usize>;
}

/// The prompter for a step: interactive on a terminal without `--yes`, otherwise none.
pub fn prompter_for(assume_yes: bool) -> Box<dyn Prompter + Send> {
    let terminal = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if terminal && !assume_yes { Box::new(Interactive) } else { Box::new(NoPrompt { assume_yes }) }
}

/// Prompts on the terminal with inquire.
#[derive(Debug)]
pub struct Interactive;

impl Prompter for Interactive {
    fn text(&mut self, _key: &str, message: &str, default: Option<&str>) -> anyhow::Result<String> {
        let mut prompt = inquire::Text::new(message);
        if let Some(default) = default {
            prompt = prompt.with_default(default);
        }
        Ok(prompt.prompt()?)
    }

    fn confirm(&mut self, _key: &str, message: &str, default: bool) -> anyhow::Result<bool> {
        Ok(inquire::Confirm::new(message).with_default(default).prompt()?)
    }

    fn select(
        &mut self,
        _key: &str,
        message: &str,
        options: &[String],
        default: usize,
    ) -> anyhow::Result<usize> {
        let answer = inquire::Select::new(message, options.to_vec())
            .with_starting_cursor(default)
            .prompt()?;
        Ok(options.iter().position(|o| *o == answer).unwrap_or(default))
    }
}

/// Never prompts: with `assume_yes` takes defaults and confirms, otherwise fails naming the key.
#[derive(Debug)]
pub struct NoPrompt {
    /// Whether `--yes` was given.
    pub assume_yes: bool,
}

impl NoPrompt {
    /// `key` names a `.env` key, a flag (`--path`), or the question (`switch`).
    fn refuse(&self, key: &str, what: &str) -> anyhow::Error {
        let how = match (crate::keys::spec(key).is_some(), key.starts_with("--")) {
            (true, _) if self.assume_yes => "set it in .env or pass it as a flag".to_string(),
            (true, _) => "pass --yes to accept defaults, or set it in .env".to_string(),
            (false, true) => format!("pass {key}"),
            (false, false) => "pass --yes to accept".to_string(),
        };
        anyhow::Error::new(UsageError(format!(
            "{key}: {what} but there is no terminal to ask on; {how}"
        )))
    }
}

impl Prompter for NoPrompt {
    fn text(&mut self, key: &str, _message: &str, default: Option<&str>) -> anyhow::Result<String> {
        match default {
            Some(d) if self.assume_yes => Ok(d.to_string()),
            _ => Err(self.refuse(key, "a value is needed")),
        }
    }

    fn confirm(&mut self, key: &str, _message: &str, _default: bool) -> anyhow::Result<bool> {
        if self.assume_yes { Ok(true) } else { Err(self.refuse(key, "a confirmation is needed")) }
    }

    fn select(
        &mut self,
        key: &str,
        _message: &str,
        _options: &[String],
        default: usize,
    ) -> anyhow::Result<usize> {
        if self.assume_yes { Ok(default) } else { Err(self.refuse(key, "a choice is needed")) }
    }
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Take the default.
    Default,
    /// Type this text.
    Text(String),
    /// Answer yes or no.
    Confirm(bool),
    /// Pick the option with this index.
    Select(usize),
    /// Press Esc.
    Cancel,
}

/// Replays answers in order, recording which keys were asked; for tests.
#[derive(Debug, Clone, Default)]
pub struct Scripted {
    answers: Arc<std::sync::Mutex<VecDeque<Answer>>>,
    asked: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Scripted {
    /// A prompter that gives `answers` in order.
    pub fn new(answers: impl IntoIterator<Item = Answer>) -> Self {
        Self {
            answers: Arc::new(std::sync::Mutex::new(answers.into_iter().collect())),
            asked: Arc::default(),
        }
    }

    /// The keys asked so far, in order.
    pub fn asked(&self) -> Vec<String> {
        self.asked.lock().map(|a| a.clone()).unwrap_or_default()
    }

    fn next(&mut self, key: &str) -> anyhow::Result<Answer> {
        if let Ok(mut asked) = self.asked.lock() {
            asked.push(key.to_string());
        }
        let answer = self.answers.lock().ok().and_then(|mut a| a.pop_front());
        match answer {
            Some(Answer::Cancel) => Err(anyhow::Error::new(crate::cli::Cancelled)),
            Some(answer) => Ok(answer),
            None => Err(anyhow::anyhow!("no scripted answer left for {key}")),
        }
    }
}

impl Prompter for Scripted {
    fn text(&mut self, key: &str, _message: &str, default: Option<&str>) -> anyhow::Result<String> {
        match self.next(key)? {
            Answer::Text(t) => Ok(t),
            _ => default.map(str::to_string).ok_or_else(|| anyhow::anyhow!("no default for {key}")),
        }
    }

    fn confirm(&mut self, key: &str, _message: &str, default: bool) -> anyhow::Result<bool> {
        match self.next(key)? {
            Answer::Confirm(b) => Ok(b),
            _ => Ok(default),
        }
    }

    fn select(
        &mut self,
        key: &str,
        _message: &str,
        _options: &[String],
        default: usize,
    ) -> anyhow::Result<usize> {
        match self.next(key)? {
            Answer::Select(i) => Ok(i),
            _ => Ok(default),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_the_way_to_answer_without_a_terminal() {
        let mut prompter = NoPrompt { assume_yes: false };
        let message = |e: anyhow::Error| e.to_string();
        let setting = message(prompter.text("AWS_REGION", "Region?", None).expect_err("refused"));
        assert!(setting.contains("set it in .env"), "{setting}");
        let flag = message(prompter.select("--path", "Which?", &[], 0).expect_err("refused"));
        assert!(flag.ends_with("pass --path"), "{flag}");
        let question = message(prompter.confirm("switch", "Switch?", false).expect_err("refused"));
        assert!(question.ends_with("pass --yes to accept"), "{question}");
        assert!(!question.contains(".env"), "{question}");
    }
}
