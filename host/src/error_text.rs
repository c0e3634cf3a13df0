//! One line of text for an error and its causes, for messages a user reads (the CLI's last
//! line, logs, `/healthz`, discovery reports).
//!
//! Owns: walking `std::error::Error::source()` chains without repeating a cause (many wrappers
//! print their source in their own message, and `{:#}` would print it again), and saying the
//! root cause of a failed connection plainly ("connection refused"). Never `Debug` output.
//! Must not touch: what an error means for retries or classes; callers decide that.

use std::error::Error;
use std::io;

/// Every distinct message of `err` and its sources, joined by `": "`. A message already
/// contained in the text so far is left out: a wrapper that shows its source's text is not
/// followed by that text again.
pub fn chain(err: &(dyn Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        let text = text.trim();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(text)) {
            parts.push(text.to_string());
        }
        next = e.source();
    }
    parts.join(": ")
}

/// Why a request failed, as plainly as it can be said: the innermost I/O error of the chain
/// when there is one (its kind for the usual network failures, e.g. `connection refused`),
/// else [`chain`]. HTTP stacks wrap a refused connection in three or four layers whose own
/// messages ("client error (Connect)", "tcp connect error") tell a user nothing.
pub fn cause(err: &(dyn Error + 'static)) -> String {
    match innermost_io(err) {
        Some(io) => io_text(io),
        None => chain(err),
    }
}

/// Whether `err`'s chain holds an I/O error of `kind`.
pub fn has_io_kind(err: &(dyn Error + 'static), kind: io::ErrorKind) -> bool {
    innermost_io(err).is_some_and(|e| e.kind() == kind)
}

fn innermost_io<'a>(err: &'a (dyn Error + 'static)) -> Option<&'a io::Error> {
    let mut found = None;
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            found = Some(io);
        }
        next = e.source();
    }
    found
}

fn io_text(e: &io::Error) -> String {
    use io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused | ConnectionReset | ConnectionAborted | NotConnected
        | AddrNotAvailable | TimedOut | HostUnreachable | NetworkUnreachable | BrokenPipe
        | UnexpectedEof => e.kind().to_string(),
        // DNS and TLS failures arrive as `Other` carrying their own error: say that one.
        _ => match e.get_ref() {
            Some(inner) => chain(inner),
            None => e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt;

    /// A wrapper like reqwest's or hyper's: a message of its own, and a source.
    #[derive(Debug)]
    struct Wrap(&'static str, Box<dyn Error + Send + Sync>);

    impl fmt::Display for Wrap {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl Error for Wrap {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&*self.1)
        }
    }

    /// A wrapper that also prints its source, as `thiserror`'s `{0}` with `#[source]` does.
    #[derive(Debug)]
    struct Echo(Box<dyn Error + Send + Sync>);

    impl fmt::Display for Echo {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "request failed: {}", self.0)
        }
    }

    impl Error for Echo {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&*self.0)
        }
    }

    fn refused() -> io::Error {
        io::Error::from(io::ErrorKind::ConnectionRefused)
    }

    #[test]
    fn chain_drops_repeated_causes() {
        let e = Echo(Box::new(Wrap(
            "client error (Connect)",
            Box::new(refused()),
        )));
        assert_eq!(
            chain(&e),
            "request failed: client error (Connect): connection refused"
        );
    }

    #[test]
    fn cause_is_the_innermost_io_error() {
        let e = Wrap(
            "dispatch failure",
            Box::new(Wrap("tcp connect error", Box::new(refused()))),
        );
        assert_eq!(cause(&e), "connection refused");
        assert!(has_io_kind(&e, io::ErrorKind::ConnectionRefused));
        assert!(!has_io_kind(&e, io::ErrorKind::TimedOut));
    }

    #[test]
    fn other_io_errors_say_their_own_message() {
        let dns =
            io::Error::other("failed to lookup address information: Name or service not known");
        let e = Wrap("dns error", Box::new(dns));
        assert_eq!(
            cause(&e),
            "failed to lookup address information: Name or service not known"
        );
        let plain = Wrap(
            "bad answer",
            Box::new(Wrap("no body", Box::new(fmt::Error))),
        );
        assert_eq!(
            cause(&plain),
            "bad answer: no body: an error occurred when formatting an argument"
        );
    }
}
